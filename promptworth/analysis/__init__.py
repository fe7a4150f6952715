"""Analysis of learning curves: how many labeled data points one adaptation method is worth."""

"""Outputs of a sweep: results.csv, learning_curves.png, advantage.json and report.md."""

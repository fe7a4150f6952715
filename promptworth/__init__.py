"""promptworth: should we prompt it or fine-tune it, and how many labels is a good prompt worth?

Data flow: task -> backbone -> method -> run -> store -> analysis -> report.
"""

__version__ = "0.1.0"

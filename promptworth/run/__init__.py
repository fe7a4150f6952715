"""Running experiments: the sweep plan, its validation, executors, one run, and suites of tasks."""

"""Package marker for tests/tasks."""

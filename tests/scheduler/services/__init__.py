"""Package marker for tests/scheduler/services."""

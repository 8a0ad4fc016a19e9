"""Package marker for tests/scheduler/api."""

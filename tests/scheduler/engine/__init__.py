"""Package marker for tests/scheduler/engine."""

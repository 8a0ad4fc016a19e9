"""Package marker for tests/scheduler."""

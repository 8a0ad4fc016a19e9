"""Package marker for tests/scheduler/faults."""

"""Package marker for tests."""

"""Package marker for tests/config."""

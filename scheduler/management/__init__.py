"""Package marker for scheduler/management."""

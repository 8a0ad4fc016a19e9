"""Package marker for scheduler/management/commands."""

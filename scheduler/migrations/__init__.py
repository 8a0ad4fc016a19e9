"""Package marker for scheduler/migrations."""

"""Template tags of the scheduler app."""

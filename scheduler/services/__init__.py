"""The service layer: every write to the scheduler's tables goes through these functions."""

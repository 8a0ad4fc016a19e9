"""Web views of the scheduler app: health, metrics and the dashboard."""

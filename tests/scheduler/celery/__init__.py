"""Package marker for tests/scheduler/celery."""

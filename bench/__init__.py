"""Benchmarks of the scheduler engine beside django-celery-beat and pgbench (`make bench`)."""

"""The scheduler engine behind `manage.py runscheduler`: APScheduler driven by the jobs table."""

"""The Celery application, configured from Django settings with the CELERY_ prefix."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
# The one Celery task, the worker side of offloaded runs, is scheduler/tasks.py (Celery's
# conventional place); job task functions are not Celery tasks.
app.autodiscover_tasks()

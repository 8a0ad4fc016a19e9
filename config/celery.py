"""The Celery application, configured from Django settings with the CELERY_ prefix."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery tasks live in tasks/offloaded.py.
app.autodiscover_tasks(lambda: ["tasks"], related_name="offloaded")

"""Benchmark-only settings: the product's base settings plus django-celery-beat for the baseline."""

from config.settings.base import *  # noqa: F403
from config.settings.base import INSTALLED_APPS, env

DEBUG = False
SECRET_KEY = env("SECRET_KEY", default="bench-only-key-not-for-any-deployment")
INSTALLED_APPS = [*INSTALLED_APPS, "django_celery_beat"]
# A private Redis database: the baseline's published messages are counted there.
CELERY_BROKER_URL = env("BENCH_REDIS_URL", default="redis://127.0.0.1:6379/13")
CELERY_TIMEZONE = "UTC"

"""Test settings: the local ones with fast password hashing; DATABASE_URL picks SQLite or PostgreSQL."""

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = env("SECRET_KEY", default="django-insecure-test-key")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not memory, so that `runscheduler` subprocesses started by tests share it; one per
    # test run, so that concurrent runs on one machine never share a file.
    import os
    import tempfile

    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.gettempdir(), f"scheduler-test-{os.getpid()}.sqlite3")
    }

"""Test settings: the local ones with fast password hashing; DATABASE_URL picks SQLite or PostgreSQL."""

from .base import *  # noqa: F403
from .base import INSTALLED_APPS, env

DEBUG = False
SECRET_KEY = env("SECRET_KEY", default="django-insecure-test-key")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# django-celery-beat's real tables, for the tests of import_celery_beat: in the test database (as a
# team still running beat has them) and alone in a database of their own ("celery_beat", created
# only for the tests that ask for it), as the benchmark's settings install it. Never in the
# product's INSTALLED_APPS: the importer reads the tables without the package.
INSTALLED_APPS = [*INSTALLED_APPS, "django_celery_beat"]
DATABASES["celery_beat"] = {  # noqa: F405
    **DATABASES["default"],  # noqa: F405
    "NAME": f"{DATABASES['default']['NAME']}_celery_beat",  # noqa: F405
    "OPTIONS": dict(DATABASES["default"].get("OPTIONS", {})),  # noqa: F405
}
DATABASE_ROUTERS = ["tests.celery_beat_router.CeleryBeatRouter"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not memory, so that `runscheduler` subprocesses started by tests share it; one per
    # test run, so that concurrent runs on one machine never share a file.
    import os
    import tempfile

    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.gettempdir(), f"scheduler-test-{os.getpid()}.sqlite3")
    }
    DATABASES["celery_beat"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.gettempdir(), f"scheduler-test-{os.getpid()}-celery-beat.sqlite3")
    }

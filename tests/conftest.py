"""Shared fixtures: users, jobs, and the guards for tests that need real external services."""
import os

import pytest
from django.db import connection

from tests.factories import CronJobFactory, IntervalJobFactory, UserFactory

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def service_missing(message: str):
    """Fail under CI (a missing service must not pass silently); skip, loudly, on a laptop."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI requires it)", pytrace=False)
    pytest.skip(f"{message}; start it to run this test")


@pytest.fixture
def postgres(db):
    if connection.vendor != "postgresql":
        pytest.fail("This test is marked postgres; run it with DATABASE_URL=postgres://...")
    return connection


@pytest.fixture
def redis_url():
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        service_missing(f"Redis is not reachable at {REDIS_URL}: {exc}")
    return REDIS_URL


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def interval_job(db):
    return IntervalJobFactory()


@pytest.fixture
def cron_job(db):
    return CronJobFactory()


@pytest.fixture
def clean_registry():
    """The task registry; whatever a test registers, removes or imports for it is undone afterwards."""
    import sys

    from scheduler import registry

    saved = dict(registry._registry)
    modules = set(sys.modules)
    yield registry
    registry._registry.clear()
    registry._registry.update(saved)
    for name in set(sys.modules) - modules:
        if name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("sample_"):
            del sys.modules[name]

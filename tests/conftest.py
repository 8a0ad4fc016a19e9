"""Shared fixtures: users, jobs, and the guards for tests that need real external services."""

import functools
import glob
import os
import subprocess

import pytest
from django.db import connection

from tests.factories import CronJobFactory, IntervalJobFactory, UserFactory
from tests.notification_servers import SMTPServer, WebhookReceiver

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def service_missing(message: str, remedy: str = "start it to run this test"):
    """Fail under CI (a missing service must not pass silently); skip, loudly, on a laptop.

    Every test that needs PostgreSQL, Redis, Chromium or a server binary comes here, so the
    rule lives in one place.
    """
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI requires it)", pytrace=False)
    pytest.skip(f"{message}; {remedy} (README: Running the tests)")


@functools.cache
def libfaketime_path() -> str | None:
    """The preload library of Debian's `faketime` package (the thread-safe build when present)."""
    candidates = []
    try:
        listing = subprocess.run(["dpkg", "-L", "libfaketime"], capture_output=True, text=True, timeout=10).stdout
        candidates += listing.split()
    except (OSError, subprocess.SubprocessError):
        pass
    candidates += glob.glob("/usr/lib/*/faketime/*.so.1") + glob.glob("/usr/lib/faketime/*.so.1")
    candidates += glob.glob("/usr/local/lib/faketime/*.so.1")
    existing = [path for path in candidates if os.path.isfile(path)]
    # A scheduler is multi-threaded: libfaketimeMT synchronises the library's own caches.
    for name in ("libfaketimeMT.so.1", "libfaketime.so.1"):
        for path in existing:
            if os.path.basename(path) == name:
                return path
    return None


def _postgres_missing():
    if connection.vendor != "postgresql":
        service_missing(
            "PostgreSQL is not the test database",
            "run `make test`, whose second pass uses TEST_DATABASE_URL, or set DATABASE_URL=postgres://...",
        )


@functools.cache
def _redis_problem() -> str | None:
    """Asked once per run: every Redis test then skips (or fails) for the same reason."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        return f"Redis is not reachable at {REDIS_URL} ({exc})"
    return None


def _redis_missing():
    if problem := _redis_problem():
        service_missing(problem, "start it or set TEST_REDIS_URL")


def pytest_runtest_setup(item):
    """Check the services here, after skip marks and before any fixture runs, not only in the
    fixtures below: a skip raised in a fixture is reported at each test's own line, one raised
    here at this file's, so pytest's summary folds the tests lacking one service into one line."""
    if item.get_closest_marker("postgres") or "postgres" in item.fixturenames:
        _postgres_missing()
    if "redis_url" in item.fixturenames:
        _redis_missing()


@pytest.fixture
def postgres(db):
    _postgres_missing()
    return connection


@pytest.fixture
def redis_url():
    _redis_missing()
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


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server on a free port, and Django's SMTP email backend pointed at it."""
    server = SMTPServer().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield server
    server.stop()


@pytest.fixture
def webhook_receiver():
    """A real HTTP server recording the JSON posted to it (set .fail to answer 500 that many times)."""
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()

"""Fixtures for the service tests: a controllable clock and a recorder of after-commit announcements."""
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from scheduler.models import TaskFunction
from scheduler.services.changes import schedule_changed

# A Monday at noon UTC: far from any DST change in the zones the job tests use.
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


class Clock:
    """Stands in for django.utils.timezone.now so the services see a fixed, movable time."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, now: datetime) -> datetime:
        self.now = now
        return now


@pytest.fixture
def clock(monkeypatch):
    """Freeze timezone.now() (services, auto_now fields, querysets) at T0; move it with advance()."""
    fake = Clock(T0)
    monkeypatch.setattr(timezone, "now", fake)
    return fake


@pytest.fixture
def announcements():
    """(job_id, execution_id) of every schedule_changed signal sent while the test runs."""
    received = []

    def receiver(sender, job_id=None, execution_id=None, **kwargs):
        received.append((job_id, execution_id))

    schedule_changed.connect(receiver, weak=False, dispatch_uid="tests-announcements")
    yield received
    schedule_changed.disconnect(dispatch_uid="tests-announcements")


@pytest.fixture
def noop(db):
    return TaskFunction.objects.get(name="tasks.functions.noop")


@pytest.fixture
def retired_function(db):
    """A task function that was removed from code: its row stays, inactive."""
    return TaskFunction.objects.create(name="tasks.functions.retired", is_active=False)

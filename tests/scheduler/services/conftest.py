"""Fixtures and helpers for the service tests: a controllable clock, a recorder of after-commit
announcements, executions at distinct times, and claimed runs with their leases."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from scheduler.enums import ExecutionStatus
from scheduler.models import JobExecution, JobLease, ScheduledJob, TaskFunction
from scheduler.services.changes import schedule_changed
from scheduler.services.claims import runs_claim
from tests.factories import ExecutionFactory, IntervalJobFactory

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


_slots = itertools.count()


def execution_of(job, status=ExecutionStatus.PENDING, **fields):
    """An execution of `job` in `status`, at a scheduled time no other test execution uses."""
    fields.setdefault("scheduled_time", datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=next(_slots)))
    return ExecutionFactory(job=job, status=status, **fields)


# Two scheduler processes.
A, B = "instance-a", "instance-b"


@pytest.fixture
def only_test_jobs(db):
    """Take the built-in jobs off the schedule, so a claim only sees the jobs a test creates."""
    ScheduledJob.objects.update(is_enabled=False, next_run_time=None)


def interval_job(**fields) -> ScheduledJob:
    """A job every 5 minutes, due at T0."""
    fields.setdefault("interval_minutes", 5)
    job = IntervalJobFactory(**fields)
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=T0)
    job.refresh_from_db()
    return job


def claim_one(instance_id: str, now: datetime) -> JobExecution:
    [run] = runs_claim(instance_id=instance_id, now=now)
    return JobExecution.objects.get(pk=run.execution_id)


def lease_of(execution) -> JobLease:
    return JobLease.objects.get(execution=execution)

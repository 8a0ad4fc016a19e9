"""Scheduler processes: registration, heartbeats, liveness, lease renewal, reaping and abandoning runs."""
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError
from django.utils import timezone

from scheduler.models import (
    ExecutionStatus,
    JobExecution,
    ScheduledJob,
    JobLease,
    SchedulerInstance,
)
from scheduler.services.claims import runs_claim
from scheduler.services.executions import execution_start
from scheduler.services.instances import (
    executions_abandon,
    instance_heartbeat,
    instance_register,
    instance_stop,
)
from scheduler.services.leases import LEASE_EXPIRED, leases_reap, leases_renew
from tests.factories import IntervalJobFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
A, B = "instance-a", "instance-b"


@pytest.fixture(autouse=True)
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


# --- registration, heartbeats, liveness ---------------------------------------------------------


def test_register_records_the_process_as_alive():
    before = timezone.now()
    instance = instance_register(instance_id=A, hostname="host-1", pid=4242)
    instance.refresh_from_db()
    assert (instance.hostname, instance.pid, instance.stopped_at) == ("host-1", 4242, None)
    assert before <= instance.started_at == instance.last_heartbeat <= timezone.now()
    assert list(SchedulerInstance.objects.alive()) == [instance]
    assert instance.is_alive()


def test_the_same_instance_id_cannot_register_twice():
    instance_register(instance_id=A, hostname="host-1", pid=1)
    with pytest.raises(IntegrityError):
        instance_register(instance_id=A, hostname="host-2", pid=2)


def test_process_is_dead_after_three_missed_heartbeats(settings):
    settings.SCHEDULER_HEARTBEAT_INTERVAL = 10
    instance_register(instance_id=A, hostname="h", pid=1)
    instance_register(instance_id=B, hostname="h", pid=2)
    now = timezone.now()
    SchedulerInstance.objects.filter(instance_id=A).update(last_heartbeat=now - timedelta(seconds=29))
    SchedulerInstance.objects.filter(instance_id=B).update(last_heartbeat=now - timedelta(seconds=31))

    assert list(SchedulerInstance.objects.alive(now).values_list("instance_id", flat=True)) == [A]
    assert SchedulerInstance.objects.get(instance_id=A).is_alive(now)
    assert not SchedulerInstance.objects.get(instance_id=B).is_alive(now)


def test_heartbeat_brings_a_silent_process_back_to_life(settings):
    settings.SCHEDULER_HEARTBEAT_INTERVAL = 10
    instance_register(instance_id=A, hostname="h", pid=1)
    silent_since = timezone.now() - timedelta(minutes=5)
    SchedulerInstance.objects.filter(instance_id=A).update(last_heartbeat=silent_since)
    assert not SchedulerInstance.objects.alive().exists()

    instance_heartbeat(A)

    assert SchedulerInstance.objects.alive().get().instance_id == A


def test_heartbeat_of_one_process_does_not_touch_another():
    instance_register(instance_id=A, hostname="h", pid=1)
    instance_register(instance_id=B, hostname="h", pid=2)
    old = timezone.now() - timedelta(hours=1)
    SchedulerInstance.objects.update(last_heartbeat=old)
    instance_heartbeat(A)
    assert SchedulerInstance.objects.get(instance_id=B).last_heartbeat == old
    assert SchedulerInstance.objects.get(instance_id=A).last_heartbeat > old


def test_stopped_process_is_not_alive_even_with_a_fresh_heartbeat():
    instance_register(instance_id=A, hostname="h", pid=1)
    instance_stop(A)
    instance = SchedulerInstance.objects.get(instance_id=A)
    assert instance.stopped_at is not None
    assert not SchedulerInstance.objects.alive().exists()
    assert not instance.is_alive()


# --- lease renewal ------------------------------------------------------------------------------


def test_renewal_pushes_the_lease_expiry_by_the_ttl(settings):
    settings.SCHEDULER_LOCK_TTL = 120
    interval_job()
    execution = claim_one(A, T0)
    assert lease_of(execution).expires_at == T0 + timedelta(seconds=120)

    assert leases_renew([execution.pk], now=T0 + timedelta(seconds=100)) == 1

    assert lease_of(execution).expires_at == T0 + timedelta(seconds=220)


def test_heartbeat_renews_the_leases_of_the_runs_the_process_is_executing(settings):
    settings.SCHEDULER_LOCK_TTL = 300
    running, idle = interval_job(), interval_job()
    runs = {run.job_id: run.execution_id for run in runs_claim(instance_id=A, now=T0)}
    instance_register(instance_id=A, hostname="h", pid=1)
    before = timezone.now()

    instance_heartbeat(A, running_execution_ids=[runs[running.pk]])

    renewed = JobLease.objects.get(execution_id=runs[running.pk]).expires_at
    assert before + timedelta(seconds=300) <= renewed <= timezone.now() + timedelta(seconds=300)
    assert JobLease.objects.get(execution_id=runs[idle.pk]).expires_at == T0 + timedelta(seconds=300)


def test_a_renewed_long_run_is_never_reaped(settings):
    settings.SCHEDULER_LOCK_TTL = 60
    interval_job()
    execution = claim_one(A, T0)
    execution_start(execution, instance_id=A)
    for beat in range(1, 10):  # a healthy run renews every half TTL, for longer than the TTL
        leases_renew([execution.pk], now=T0 + timedelta(seconds=30 * beat))
        assert leases_reap(now=T0 + timedelta(seconds=30 * beat + 59)) == 0
    assert JobExecution.objects.get(pk=execution.pk).status == ExecutionStatus.RUNNING


# --- reaping expired leases ---------------------------------------------------------------------


def test_reaping_fails_the_run_of_an_expired_lease_and_frees_its_slot(settings):
    settings.SCHEDULER_LOCK_TTL = 600
    job = interval_job(max_instances=1, misfire_grace_time=60)
    execution = claim_one(A, T0)
    execution_start(execution, instance_id=A)
    # The lease is live: the next fire time is skipped, and the reaper leaves it alone.
    assert runs_claim(instance_id=B, now=T0 + timedelta(minutes=5)) == []
    assert leases_reap(now=T0 + timedelta(minutes=5)) == 0

    # Process A died: ten minutes later its lease has expired.
    assert leases_reap(now=T0 + timedelta(minutes=10)) == 1

    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    assert execution.error_message == f"{LEASE_EXPIRED} (held by {A})"
    assert execution.error_message.startswith("lease expired: the process running it stopped")
    assert execution.finished_at is not None
    assert not JobLease.objects.filter(job=job).exists(), "the slot is free"
    next_run = claim_one(B, T0 + timedelta(minutes=10))
    assert (next_run.scheduled_time, next_run.status) == (T0 + timedelta(minutes=10), ExecutionStatus.PENDING)
    assert leases_reap(now=T0 + timedelta(minutes=11)) == 0, "each expired lease is reaped once"


def test_reaping_also_fails_a_claimed_run_that_never_started(settings):
    settings.SCHEDULER_LOCK_TTL = 60
    interval_job()
    execution = claim_one(A, T0)
    assert leases_reap(now=T0 + timedelta(seconds=60)) == 1
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    assert execution.error_message.startswith(LEASE_EXPIRED)


def test_reaping_only_touches_expired_leases(settings):
    settings.SCHEDULER_LOCK_TTL = 600
    interval_job()
    early = claim_one(A, T0)
    late_job = interval_job()
    ScheduledJob.objects.filter(pk=late_job.pk).update(next_run_time=T0 + timedelta(minutes=8))
    late = claim_one(B, T0 + timedelta(minutes=8))

    assert leases_reap(now=T0 + timedelta(minutes=10)) == 1

    assert JobExecution.objects.get(pk=early.pk).status == ExecutionStatus.FAILED
    assert JobExecution.objects.get(pk=late.pk).status == ExecutionStatus.PENDING
    assert lease_of(late).locked_by == B


def test_a_lease_left_behind_by_a_finished_run_is_removed_without_changing_the_outcome():
    interval_job()
    execution = claim_one(A, T0)
    JobExecution.objects.filter(pk=execution.pk).update(status=ExecutionStatus.SUCCESS)

    assert leases_reap(now=T0 + timedelta(days=1)) == 0

    assert JobExecution.objects.get(pk=execution.pk).status == ExecutionStatus.SUCCESS
    assert not JobLease.objects.exists()


# --- abandoning runs at shutdown ----------------------------------------------------------------


def test_abandon_fails_the_running_runs_with_the_reason_and_frees_their_slots():
    interval_job()
    interval_job()
    runs = runs_claim(instance_id=A, now=T0)
    started, not_started = (JobExecution.objects.get(pk=run.execution_id) for run in runs)
    execution_start(started, instance_id=A)

    reason = "scheduler stopped before the run finished"
    assert executions_abandon([started.pk, not_started.pk], reason=reason) == 1

    started.refresh_from_db()
    assert (started.status, started.error_message) == (ExecutionStatus.FAILED, reason)
    assert started.finished_at is not None
    assert not JobLease.objects.filter(execution=started).exists()
    assert JobExecution.objects.get(pk=not_started.pk).status == ExecutionStatus.PENDING
    assert executions_abandon([started.pk], reason=reason) == 0, "a finished run is not failed again"

"""Leases: renewal by heartbeats, and the reaping of expired ones."""

from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler.models import ExecutionStatus, JobExecution, JobLease, ScheduledJob
from scheduler.services.claims import runs_claim
from scheduler.services.executions import execution_start
from scheduler.services.instances import instance_heartbeat, instance_register
from scheduler.services.leases import LEASE_EXPIRED, leases_reap, leases_renew
from tests.scheduler.services.conftest import T0, A, B, claim_one, interval_job, lease_of

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("only_test_jobs")]


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

"""The runner: a run claimed long ago is confirmed against its lease before it starts."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from scheduler.engine.runner import Runner
from scheduler.enums import ExecutionStatus as S
from scheduler.models import JobExecution, JobLease, ScheduledJob
from scheduler.services.claims import runs_claim
from scheduler.services.leases import leases_reap
from scheduler.services.runs import IMMEDIATE
from tests.factories import IntervalJobFactory

ME = "runner-test"


def dispatch_in_a_worker_thread(runner, run):
    """As the engine does: each run starts and ends its thread's connections afresh."""

    def work():
        try:
            runner.dispatch(run)
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(30)


@pytest.fixture
def claimed(engine_db, settings):
    settings.SCHEDULER_LOCK_TTL = 30
    ScheduledJob.objects.update(is_enabled=False, next_run_time=None)  # only this test's job is due
    job = IntervalJobFactory()
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=timezone.now() - timedelta(seconds=1))
    runner = Runner(instance_id=ME, hostname="here", recorder=IMMEDIATE)
    [run] = runs_claim(instance_id=ME)
    runner.claimed([run])
    return runner, run


def as_if_claimed_seconds_ago(runner, run, seconds):
    claim = runner._claimed[run.execution_id]
    claim.claimed_mono -= seconds
    claim.claimed_wall -= seconds


def test_a_fresh_claim_runs_at_once(claimed):
    runner, run = claimed
    dispatch_in_a_worker_thread(runner, run)
    assert JobExecution.objects.get(pk=run.execution_id).status == S.SUCCESS
    assert runner.held() == set()


def test_a_run_held_longer_than_a_third_of_its_lease_runs_if_the_lease_is_still_its_own(claimed):
    runner, run = claimed
    as_if_claimed_seconds_ago(runner, run, 15)
    dispatch_in_a_worker_thread(runner, run)
    assert JobExecution.objects.get(pk=run.execution_id).status == S.SUCCESS


def test_a_run_whose_lease_was_reaped_while_this_process_was_frozen_is_never_started(claimed, caplog):
    runner, run = claimed
    JobLease.objects.filter(execution_id=run.execution_id).update(expires_at=run.scheduled_time)  # expired
    assert leases_reap() == 1  # another process reaps it: failed, "lease expired"
    as_if_claimed_seconds_ago(runner, run, 3600)  # the frozen process wakes
    dispatch_in_a_worker_thread(runner, run)
    execution = JobExecution.objects.get(pk=run.execution_id)
    assert execution.status == S.FAILED and execution.started_at is None
    assert "lease expired" in execution.error_message
    assert "Not starting execution" in caplog.text
    assert runner.held() == set()

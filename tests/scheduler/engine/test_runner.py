"""The runner: a run claimed long ago is confirmed against its lease before it starts."""

import threading
import time
from datetime import timedelta
from queue import SimpleQueue
from types import SimpleNamespace

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


class CountingRunner(Runner):
    """The runner's own bookkeeping, with runs that only say they ran (no task, no database)."""

    def __init__(self, run_seconds=0.0):
        super().__init__(instance_id=ME, hostname="here", recorder=IMMEDIATE)
        self.run_seconds = run_seconds
        self.ran, self.ended_cancelled = [], []

    def _run(self, run):
        time.sleep(self.run_seconds)
        self.ran.append(run.execution_id)

    def _end_unstarted(self, run, reason):
        self.ended_cancelled.append(run.execution_id)


def claimed_runs(runner, count):
    runs = [SimpleNamespace(execution_id=pk, job_id=pk) for pk in range(1, count + 1)]
    runner.claimed(runs)
    return runs


def test_a_cancel_that_reaches_a_waiting_run_ends_it_cancelled_and_one_too_late_is_refused():
    runner = CountingRunner()
    first, second = claimed_runs(runner, 2)
    assert runner.cancel_unstarted(first.execution_id, "stop it")
    runner.dispatch(first)
    runner.dispatch(second)
    assert not runner.cancel_unstarted(second.execution_id, "too late")  # it ran and ended
    assert runner.ended_cancelled == [first.execution_id] and runner.ran == [second.execution_id]
    assert runner.held() == set()


def test_after_close_no_claimed_run_starts_and_the_unstarted_ones_are_given_back():
    runner = CountingRunner()
    waiting, cancel_asked = claimed_runs(runner, 2)
    assert runner.cancel_unstarted(cancel_asked.execution_id, "stop it")
    unstarted, running = runner.close(timeout=0)
    assert unstarted == {waiting.execution_id, cancel_asked.execution_id} and running == set()
    runner.dispatch(waiting)
    runner.dispatch(cancel_asked)
    assert runner.ran == [] and runner.ended_cancelled == []


def test_every_run_is_started_cancelled_or_given_back_exactly_once_when_workers_cancels_and_a_stop_race():
    """Eight workers dispatch a crowd while another thread cancels runs and the process stops."""
    runner = CountingRunner(run_seconds=0.0005)  # 8 workers take over a second for them all
    runs = claimed_runs(runner, 20_000)
    queue = SimpleQueue()
    for run in runs:
        queue.put(run)
    cancels_delivered = []

    def work():
        while (run := queue.get()) is not None:
            runner.dispatch(run)

    def cancel():
        for run in runs[::7]:
            if runner.cancel_unstarted(run.execution_id, "cancelled"):
                cancels_delivered.append(run.execution_id)

    workers = [threading.Thread(target=work) for _ in range(8)]
    canceller = threading.Thread(target=cancel)
    for thread in [*workers, canceller]:
        thread.start()
    while len(runner.ran) < 5_000:  # the stop comes in the middle of the crowd
        time.sleep(0.01)
    unstarted, running = runner.close(timeout=0)
    for _ in workers:
        queue.put(None)
    for thread in [*workers, canceller]:
        thread.join(30)

    ran, ended_cancelled = set(runner.ran), set(runner.ended_cancelled)
    assert len(runner.ran) == len(ran) and len(runner.ended_cancelled) == len(ended_cancelled)  # none twice
    assert ran.isdisjoint(unstarted) and ended_cancelled.isdisjoint(unstarted) and ran.isdisjoint(ended_cancelled)
    assert ran | ended_cancelled | unstarted == {run.execution_id for run in runs}
    assert ended_cancelled <= set(cancels_delivered)  # only a delivered cancel ends a run cancelled
    assert not ran & set(cancels_delivered)  # and a run whose cancel was delivered never runs
    assert running <= ran | ended_cancelled
    assert 0 < len(unstarted) < len(runs) - 5_000

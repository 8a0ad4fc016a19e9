"""Run policies held by several real `runscheduler` processes on PostgreSQL: buffer_all runs every
fire time once, in order, one at a time (and its waiting runs survive a restart); a cancel stops an
inline run; retries record every attempt; cancel_other stops the oldest run before the next starts.
While each test runs, it samples the job's leases and running executions, which must never exceed
max_instances."""

import signal
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from scheduler.enums import ExecutionStatus, ExecutionTrigger, OverlapPolicy
from scheduler.models import JobExecution, JobLease, TaskFunction
from scheduler.services.cancels import execution_cancel
from scheduler.services.jobs import job_trigger, job_update
from tests.factories import IntervalJobFactory, UserFactory
from tests.scheduler.engine.conftest import wait_until

pytestmark = pytest.mark.postgres

S = ExecutionStatus
# The subprocesses load the tests' task functions beside the shipped ones.
TEST_TASK_MODULES = {"SCHEDULER_TASK_MODULES": "tasks.functions,tests.task_functions"}


def task_function(name: str) -> TaskFunction:
    """A task function row, once a scheduler process has synced it."""
    return wait_until(lambda: TaskFunction.objects.filter(name=name, is_active=True).first(), 15, f"{name} synced")


class Occupancy:
    """Samples of a job's live leases and running executions, taken while the processes work."""

    def __init__(self, job):
        self.job = job
        self.leases: list[int] = []
        self.running: list[int] = []

    def sample(self) -> None:
        self.leases.append(JobLease.objects.filter(job=self.job).count())
        self.running.append(JobExecution.objects.filter(job=self.job, status=S.RUNNING).count())

    def until(self, predicate, timeout: float, message: str):
        """wait_until, sampling before each look."""

        def sampled():
            self.sample()
            return predicate()

        return wait_until(sampled, timeout, message, interval=0.05)

    def assert_within(self, max_instances: int) -> None:
        assert len(self.leases) > 20, "too few samples to mean anything"
        assert max(self.leases) <= max_instances, f"leases sampled: {sorted(set(self.leases))}"
        assert max(self.running) <= max_instances, f"running runs sampled: {sorted(set(self.running))}"
        assert max(self.running) >= 1, "no run was ever seen running: the samples missed the work"


def stop_firing(job) -> None:
    """Take the job off its every-second schedule (it stays scheduled: waiting runs may start)."""
    job_update(job, interval_seconds=None, interval_hours=1)


def spans_in_order(runs) -> None:
    """Runs started in fire-time order, each after the previous one ended."""
    by_start = sorted(runs, key=lambda e: e.started_at)
    assert [e.scheduled_time for e in by_start] == sorted(e.scheduled_time for e in runs), "not in fire-time order"
    for previous, following in zip(by_start, by_start[1:]):
        assert previous.finished_at <= following.started_at, (
            f"execution {following.pk} started at {following.started_at} while {previous.pk} ran until "
            f"{previous.finished_at}"
        )


def test_buffer_all_runs_every_fire_time_once_in_order_never_two_at_a_time(postgres, start_scheduler):
    procs = [start_scheduler(wait=False) for _ in range(3)]
    for proc in procs:
        proc.wait_started()
    job = IntervalJobFactory(
        interval_seconds=1,
        interval_minutes=None,
        task_function=TaskFunction.objects.get(name="tasks.functions.sleep"),
        kwargs={"seconds": 2},
        max_instances=1,
        overlap_policy=OverlapPolicy.BUFFER_ALL,
        # Every fire time must be planned even if a claim comes late on a busy machine.
        coalesce=False,
        misfire_grace_time=60,
    )
    occupancy = Occupancy(job)
    began = timezone.now()
    occupancy.until(lambda: timezone.now() - began > timedelta(seconds=6), 30, "six seconds of firing")
    stop_firing(job)
    fired = JobExecution.objects.filter(job=job).count()
    assert occupancy.until(lambda: JobExecution.objects.filter(job=job).waiting().exists(), 10, "runs waiting")

    # Every process stops (the run in progress finishes first); the waiting runs outlive them all.
    for proc in procs:
        proc.popen.send_signal(signal.SIGTERM)
    for proc in procs:
        assert proc.popen.wait(30) == 0, proc.log()
    left_waiting = JobExecution.objects.filter(job=job).waiting().count()
    assert left_waiting >= 1, "the restart must find runs still waiting"
    assert not JobLease.objects.filter(job=job).exists()
    start_scheduler()
    occupancy.until(
        lambda: not JobExecution.objects.filter(job=job).unfinished().exists(), 30 + 3 * fired, "the backlog drained"
    )

    runs = list(JobExecution.objects.filter(job=job).order_by("scheduled_time"))
    assert len(runs) == fired >= 4, "every run was recorded when its fire time came, none later"
    assert [e.status for e in runs] == [S.SUCCESS] * len(runs), [(e.pk, e.status, e.error_message) for e in runs]
    times = [e.scheduled_time for e in runs]
    assert all(b - a == timedelta(seconds=1) for a, b in zip(times, times[1:])), f"gaps or repeats: {times}"
    spans_in_order(runs)
    occupancy.assert_within(1)
    print(f"buffer_all: {len(runs)} runs, {left_waiting} still waiting across the restart")


def test_cancel_stops_a_running_inline_sleep_and_records_who_asked(postgres, start_scheduler):
    start_scheduler()
    job = IntervalJobFactory(
        interval_hours=1,
        interval_minutes=None,
        task_function=TaskFunction.objects.get(name="tasks.functions.sleep"),
        kwargs={"seconds": 60},
    )
    operator = UserFactory(username="operator", is_superuser=True)
    api = APIClient()
    api.force_authenticate(operator)
    execution = job_trigger(job)
    wait_until(lambda: JobExecution.objects.get(pk=execution.pk).status == S.RUNNING, 15, "the run started")

    response = api.post(
        f"/api/v1/scheduler/jobs/{job.pk}/action", {"action": "cancel", "executionId": execution.pk}, format="json"
    )

    assert response.status_code == 202, response.content
    assert response.json()["cancelRequested"] is True
    ended = wait_until(
        lambda: JobExecution.objects.filter(pk=execution.pk).exclude(status=S.RUNNING).first(), 10, "the run ended"
    )
    assert ended.status == S.CANCELLED, ended.error_message
    assert ended.error_message == "cancelled by operator"
    assert ended.cancel_requested_by == operator
    assert ended.duration_ms < 30_000, "the sleep stopped long before its 60 s"
    assert not JobLease.objects.filter(execution=ended).exists()
    [shown] = api.get(f"/api/v1/scheduler/jobs/{job.pk}/history").json()["results"]
    assert (shown["status"], shown["cancelRequested"], shown["cancelRequestedBy"]) == ("cancelled", False, "operator")


def test_a_failing_runs_retries_are_all_recorded_within_max_instances(postgres, start_scheduler):
    procs = [start_scheduler(env=TEST_TASK_MODULES, wait=False) for _ in range(3)]
    for proc in procs:
        proc.wait_started()
    max_retries = 2
    job = IntervalJobFactory(
        interval_seconds=2,
        interval_minutes=None,
        task_function=task_function("tests.task_functions.sleep_then_fail"),
        kwargs={"seconds": 0.4, "message": "still broken"},
        max_instances=1,
        max_retries=max_retries,
        retry_backoff=1,
    )
    occupancy = Occupancy(job)
    began = timezone.now()
    occupancy.until(lambda: timezone.now() - began > timedelta(seconds=8), 30, "eight seconds of runs")
    stop_firing(job)

    def settled():
        executions = JobExecution.objects.filter(job=job)
        # A failure whose retry is not written yet would look settled: wait for each to have its retry.
        unretried = executions.filter(status=S.FAILED, attempt__lte=max_retries, retry__isnull=True)
        return not executions.unfinished().exists() and not unretried.exists()

    occupancy.until(settled, 60, "every retry ran")
    # While the job fired every 2 s a retry could meet a scheduled run and be skipped (overlap
    # policy skip), so no chain is sure to be whole then: one run with nothing to compete with is.
    alone = job_trigger(job)
    occupancy.until(settled, 60, "the lone run's retries ran")

    executions = {e.pk: e for e in JobExecution.objects.filter(job=job)}
    retries = [e for e in executions.values() if e.trigger == ExecutionTrigger.RETRY]
    assert retries, "no run was retried"
    for retry in retries:
        tried = executions[retry.retry_of_id]
        assert tried.status == S.FAILED and retry.attempt == tried.attempt + 1 <= max_retries + 1
        assert (retry.args, retry.kwargs) == (tried.args, tried.kwargs)
        if retry.started_at is not None:
            assert retry.started_at >= retry.scheduled_time >= tried.finished_at, "it waited out its backoff"
    for execution in executions.values():
        if execution.status == S.FAILED:
            assert execution.error_message == "RuntimeError: still broken"
            has_retry = any(r.retry_of_id == execution.pk for r in retries)
            assert has_retry == (execution.attempt <= max_retries), (execution.pk, execution.attempt)
    chain = [executions[alone.pk]]
    while next_try := next((r for r in retries if r.retry_of_id == chain[-1].pk), None):
        chain.append(next_try)
    assert [(e.attempt, e.status) for e in chain] == [(n, S.FAILED) for n in range(1, max_retries + 2)], (
        "the lone run did not go through every attempt"
    )
    started = sorted((e for e in executions.values() if e.started_at), key=lambda e: e.started_at)
    for previous, following in zip(started, started[1:]):
        assert previous.finished_at <= following.started_at, "two attempts ran at once"
    occupancy.assert_within(1)


def test_cancel_other_stops_the_running_inline_run_before_the_next_one_starts(postgres, start_scheduler):
    for _ in range(2):
        start_scheduler()
    job = IntervalJobFactory(
        interval_seconds=3,
        interval_minutes=None,
        task_function=TaskFunction.objects.get(name="tasks.functions.sleep"),
        kwargs={"seconds": 60},
        max_instances=1,
        overlap_policy=OverlapPolicy.CANCEL_OTHER,
    )
    reason = "cancelled by the overlap policy cancel_other: a newer run is due"
    occupancy = Occupancy(job)

    occupancy.until(
        lambda: JobExecution.objects.filter(job=job, status=S.CANCELLED).count() >= 3, 60, "three runs stopped"
    )
    stop_firing(job)
    occupancy.until(lambda: not JobExecution.objects.filter(job=job).waiting().exists(), 15, "no run waiting")
    last = occupancy.until(
        lambda: JobExecution.objects.filter(job=job, status=S.RUNNING).first(), 15, "the last run running"
    )
    execution_cancel(last)
    occupancy.until(lambda: not JobExecution.objects.filter(job=job).unfinished().exists(), 15, "the last run ended")

    runs = list(JobExecution.objects.filter(job=job, started_at__isnull=False))
    by_policy = [e for e in runs if e.error_message == reason]
    assert len(by_policy) >= 3, [(e.pk, e.status, e.error_message) for e in runs]
    assert all(e.status == S.CANCELLED and e.duration_ms < 30_000 for e in by_policy)
    assert JobExecution.objects.get(pk=last.pk).status == S.CANCELLED
    spans_in_order(runs)
    occupancy.assert_within(1)


def test_a_cancel_reaches_a_claimed_run_queued_behind_a_busy_thread_and_it_never_starts(postgres, start_scheduler):
    start_scheduler(env={"SCHEDULER_INLINE_WORKERS": "1"})
    sleep = TaskFunction.objects.get(name="tasks.functions.sleep")
    # The only thread is busy for a few seconds: the process's cancel watcher (every 0.5 s) looks
    # at the queued run several times meanwhile.
    blocker = IntervalJobFactory(interval_hours=1, interval_minutes=None, task_function=sleep, kwargs={"seconds": 4})
    # noop: had it started, it would have succeeded at once, whatever was asked.
    queued_job = IntervalJobFactory(interval_hours=1, interval_minutes=None)
    blocking = job_trigger(blocker)
    wait_until(lambda: JobExecution.objects.get(pk=blocking.pk).status == S.RUNNING, 15, "the only thread busy")
    queued = job_trigger(queued_job)
    wait_until(lambda: JobExecution.objects.get(pk=queued.pk).instance_id, 15, "the second run claimed")

    execution_cancel(queued)

    assert JobExecution.objects.get(pk=blocking.pk).status == S.RUNNING, "the thread was still busy"
    ended = wait_until(lambda: _ended(queued.pk), 20, "the queued run ended")
    assert (ended.status, ended.started_at) == (S.CANCELLED, None), ended.error_message
    assert ended.error_message == "cancelled"
    assert wait_until(lambda: _ended(blocking.pk), 10, "the blocker ended").status == S.SUCCESS
    assert not JobLease.objects.exists()


def test_an_inline_run_past_the_jobs_timeout_ends_timed_out_and_is_retried(postgres, start_scheduler):
    start_scheduler()
    job = IntervalJobFactory(
        interval_hours=1,
        interval_minutes=None,
        task_function=TaskFunction.objects.get(name="tasks.functions.sleep"),
        kwargs={"seconds": 60},
        timeout=1,
        max_retries=1,
        retry_backoff=0,
    )
    first = job_trigger(job)

    retry = wait_until(lambda: JobExecution.objects.filter(retry_of=first.pk).first(), 20, "the retry")
    retry = wait_until(lambda: _ended(retry.pk), 20, "the retry ended")

    for attempt, execution in enumerate((JobExecution.objects.get(pk=first.pk), retry), start=1):
        assert (execution.status, execution.attempt) == (S.TIMED_OUT, attempt), execution.error_message
        assert execution.error_message.endswith("past the timeout of 1s")
        assert 1000 <= execution.duration_ms < 30_000
    assert JobExecution.objects.filter(job=job).count() == 2, "max_retries=1: no third attempt"


def _ended(execution_id):
    return JobExecution.objects.filter(pk=execution_id).exclude(status__in=[S.PENDING, S.RUNNING]).first()

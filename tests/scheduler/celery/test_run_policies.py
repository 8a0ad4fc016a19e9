"""Run policies of offloaded runs on a real Celery worker: a cancel revokes the running task with
termination (its worker process is killed, the run ends cancelled), and a job's timeout overrides
its task function's through Celery's time limits."""

import os

import pytest
from celery import current_app

from scheduler.enums import ExecutionStatus
from scheduler.models import JobExecution, JobLease, TaskFunction
from scheduler.services.cancels import execution_cancel
from scheduler.services.jobs import job_trigger, job_update
from tests.factories import IntervalJobFactory, UserFactory
from tests.scheduler.engine.conftest import wait_until

S = ExecutionStatus


@pytest.fixture
def broker_here(settings, redis_url):
    """This test process stands for the web app (the API, admin and dashboard, which revoke a
    cancelled run's task): like a deployed one, it talks to the broker the worker listens on."""
    previous = current_app.conf.broker_url
    settings.CELERY_BROKER_URL = current_app.conf.broker_url = redis_url
    yield
    current_app.conf.broker_url = previous
    current_app.close()  # no connection to the test's broker outlives the test


def _job(name, **kwargs):
    function = wait_until(lambda: TaskFunction.objects.filter(name=name, is_active=True).first(), 15, f"{name} synced")
    return IntervalJobFactory(interval_hours=1, interval_minutes=None, task_function=function, **kwargs)


def _ended(execution_id):
    return JobExecution.objects.filter(pk=execution_id).exclude(status__in=[S.PENDING, S.RUNNING]).first()


def _running(execution_id):
    return JobExecution.objects.filter(pk=execution_id, status=S.RUNNING).first()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child its parent has not reaped yet is a zombie: it runs no code either.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_cancel_of_a_running_offloaded_sleep_stops_it_on_the_worker(
    start_scheduler, start_worker, celery_env, broker_here
):
    start_worker()
    start_scheduler(env=celery_env)
    job = _job("tasks.functions.sleep_offloaded", kwargs={"seconds": 60})
    operator = UserFactory(username="operator")
    execution = job_trigger(job)
    running = wait_until(lambda: _running(execution.pk), 30, "the offloaded run started")

    asked = execution_cancel(running, user=operator)

    assert asked.status == S.RUNNING and asked.cancel_pending
    ended = wait_until(lambda: _ended(execution.pk), 20, "the run ended")
    assert ended.status == S.CANCELLED, ended.error_message
    assert ended.error_message.startswith("cancelled by operator")
    assert ended.cancel_requested_by == operator
    assert ended.duration_ms is None or ended.duration_ms < 30_000
    assert not JobLease.objects.filter(execution=ended).exists()
    # Revoked with termination, or stopped by the sleep itself when the worker's watch for cancel
    # requests came first: the next test shows the termination, with a function that ignores cancels.


def test_cancel_kills_the_worker_process_of_a_function_that_ignores_it(
    start_scheduler, start_worker, celery_env, broker_here, tmp_path
):
    worker = start_worker()
    start_scheduler(env=celery_env)
    marker = tmp_path / "run"
    job = _job("tests.task_functions.sleep_ignoring_cancels", kwargs={"seconds": 20, "marker": str(marker)})
    execution = job_trigger(job)
    started = wait_until(lambda: marker.with_suffix(".started").exists() and _running(execution.pk), 30, "started")
    pid = int(marker.with_suffix(".started").read_text())
    assert _alive(pid)

    execution_cancel(started)

    ended = wait_until(lambda: _ended(execution.pk), 20, "the run ended")
    assert ended.status == S.CANCELLED, ended.error_message
    assert "terminated on the worker" in ended.error_message
    wait_until(lambda: not _alive(pid), 15, f"worker process {pid} gone")
    assert not marker.with_suffix(".finished").exists(), "the function never reached its end"
    assert f"Terminating {started.celery_task_id}" in worker.log()


def test_a_jobs_timeout_overrides_the_task_functions_on_the_worker(start_scheduler, start_worker, celery_env):
    start_worker()
    start_scheduler(env=celery_env)
    # No timeout of its own, and it sleeps in time.sleep: only Celery's time limit can stop it.
    stubborn = _job("tests.task_functions.record_order", kwargs={"seconds": 30}, timeout=2)
    # Its function allows an hour; the job allows 2 s.
    shipped = _job("tasks.functions.sleep_offloaded", kwargs={"seconds": 30}, timeout=2)

    runs = [job_trigger(stubborn), job_trigger(shipped)]

    for execution in runs:
        ended = wait_until(lambda pk=execution.pk: _ended(pk), 40, "the run timed out")
        assert ended.status == S.TIMED_OUT, ended.error_message
        assert ended.error_message.startswith("timed out")
        assert "timeout of 2s" in ended.error_message
        # Celery counts its time limit from the task's start, a moment before the run's.
        assert 1500 <= ended.duration_ms < 20_000


def test_terminate_other_kills_the_oldest_offloaded_run_then_starts_the_new_one(
    start_scheduler, start_worker, celery_env, broker_here, tmp_path
):
    start_worker()
    start_scheduler(env=celery_env)
    marker = tmp_path / "run"
    job = _job(
        "tests.task_functions.sleep_ignoring_cancels",
        kwargs={"seconds": 30, "marker": str(marker)},
        overlap_policy="terminate_other",
    )
    # Every 3 seconds from now: the second run comes due while the first still sleeps.
    job_update(job, interval_hours=None, interval_seconds=3)
    first = wait_until(lambda: JobExecution.objects.filter(job=job, status=S.RUNNING).first(), 30, "the first run")
    started = marker.with_suffix(".started")
    first_pid = int(wait_until(lambda: started.exists() and started.read_text(), 10, "the first run's marker"))

    first = wait_until(lambda: _ended(first.pk), 30, "the first run stopped by the next one")
    job_update(job, interval_seconds=None, interval_hours=1)

    assert first.status == S.CANCELLED, first.error_message
    assert first.error_message == (
        "cancelled by the overlap policy terminate_other: a newer run is due (terminated on the worker)"
    )
    wait_until(lambda: not _alive(first_pid), 15, f"worker process {first_pid} gone")
    assert not marker.with_suffix(".finished").exists(), "the first run never reached its end"
    second = wait_until(
        lambda: JobExecution.objects.filter(job=job, status=S.RUNNING).exclude(pk=first.pk).first(), 30, "next run"
    )
    assert second.scheduled_time > first.scheduled_time and second.started_at >= first.finished_at
    # Tidy up: whatever still runs or waits is cancelled, and every run of the job ends.
    wait_until(lambda: not JobExecution.objects.filter(job=job).waiting().exists(), 15, "nothing waiting")
    for execution in JobExecution.objects.filter(job=job).unfinished():
        execution_cancel(execution)
    wait_until(lambda: not JobExecution.objects.filter(job=job).unfinished().exists(), 30, "every run ended")
    assert not JobLease.objects.filter(job=job).exists()

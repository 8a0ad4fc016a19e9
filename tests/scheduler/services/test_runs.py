"""Running a claimed execution: only registered code runs, and every outcome is recorded on the row."""

import dataclasses
from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler import registry
from scheduler.models import (
    ExecutionStatus,
    ExecutionTrigger,
    JobExecution,
    JobLease,
    ScheduledJob,
    TaskFunction,
)
from scheduler.services.claims import runs_claim
from scheduler.services.executions import execution_start
from scheduler.services.jobs import job_trigger
from scheduler.services.leases import LEASE_EXPIRED, leases_reap
from scheduler.services.runs import HOSTNAME, execution_run
from tests.factories import IntervalJobFactory

pytestmark = pytest.mark.django_db

INSTANCE = "runner-instance"
RECORDER = "tests.scheduler.services.test_runs.recorder"


@pytest.fixture(autouse=True)
def only_test_jobs(db):
    """Take the built-in jobs off the schedule, so a claim only sees the jobs a test creates."""
    ScheduledJob.objects.update(is_enabled=False, next_run_time=None)


def function(name: str) -> TaskFunction:
    return TaskFunction.objects.get(name=f"tasks.functions.{name}")


def claimed_run(task_function, *, args=(), kwargs=None) -> JobExecution:
    """A job on `task_function` that was due a second ago, claimed by INSTANCE: ready to run."""
    job = IntervalJobFactory(task_function=task_function, args=list(args), kwargs=kwargs or {})
    now = timezone.now()
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=now - timedelta(seconds=1))
    [run] = runs_claim(instance_id=INSTANCE, now=now)
    return JobExecution.objects.get(pk=run.execution_id)


@pytest.fixture
def recorder(monkeypatch, db):
    """A task function registered only for this test, which records each call it gets."""
    calls = []

    def record(*args, **kwargs):
        calls.append((args, kwargs))
        return "called"

    spec = registry.TaskSpec(name=RECORDER, func=record, description="", offload=False, queue="celery", timeout=None)
    monkeypatch.setitem(registry._registry, RECORDER, spec)
    row = TaskFunction.objects.create(name=RECORDER)
    return row, calls


# --- outcomes -----------------------------------------------------------------------------------


def test_success_records_the_json_result_duration_and_where_it_ran():
    execution = claimed_run(function("echo"), args=[1, "two"], kwargs={"three": [3]})
    assert JobLease.objects.filter(execution=execution).exists()

    result = execution_run(execution.pk, instance_id=INSTANCE, hostname="worker-7")

    assert result.pk == execution.pk
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCESS
    assert execution.result == {"args": [1, "two"], "kwargs": {"three": [3]}}
    assert (execution.error_message, execution.traceback) == ("", "")
    assert execution.started_at <= execution.finished_at
    assert execution.duration_ms is not None and execution.duration_ms >= 0
    assert (execution.instance_id, execution.hostname) == (INSTANCE, "worker-7")
    assert not JobLease.objects.filter(execution=execution).exists(), "the lease is given back"


def test_noop_succeeds_with_no_result_and_defaults_to_this_host():
    execution = claimed_run(function("noop"))
    execution_run(execution.pk, instance_id=INSTANCE)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCESS
    assert (execution.result, execution.hostname) == (None, HOSTNAME)


def test_duration_covers_the_time_the_function_ran():
    execution = claimed_run(function("sleep"), kwargs={"seconds": 0.05})
    execution_run(execution.pk, instance_id=INSTANCE)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCESS
    assert execution.result == {"slept": 0.05}
    assert 50 <= execution.duration_ms < 5000


def test_failure_records_the_error_message_and_traceback():
    execution = claimed_run(function("fail"), kwargs={"message": "disk full"})

    execution_run(execution.pk, instance_id=INSTANCE, hostname="worker-1")

    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    assert execution.error_message == "TaskFunctionFailure: disk full"
    assert "Traceback (most recent call last)" in execution.traceback
    assert "raise TaskFunctionFailure(message)" in execution.traceback
    assert execution.result is None
    assert execution.duration_ms is not None
    assert (execution.instance_id, execution.hostname) == (INSTANCE, "worker-1")
    assert not JobLease.objects.filter(execution=execution).exists()


def test_job_args_and_kwargs_reach_the_function(recorder):
    row, calls = recorder
    execution = claimed_run(row, args=["a", 2], kwargs={"flag": True})
    execution_run(execution.pk, instance_id=INSTANCE)
    assert calls == [(("a", 2), {"flag": True})]
    execution.refresh_from_db()
    assert execution.result == "called"


def test_manual_run_runs_like_a_scheduled_one(recorder, user):
    row, calls = recorder
    job = IntervalJobFactory(task_function=row)
    execution = job_trigger(job, user=user)
    [run] = runs_claim(instance_id=INSTANCE, now=timezone.now())
    execution_run(run.execution_id, instance_id=INSTANCE)
    execution.refresh_from_db()
    assert (execution.status, execution.trigger) == (ExecutionStatus.SUCCESS, ExecutionTrigger.MANUAL)
    assert len(calls) == 1


# --- runs that must not run ---------------------------------------------------------------------


def test_an_execution_that_already_ran_is_not_run_again(recorder):
    row, calls = recorder
    execution = claimed_run(row)
    execution_run(execution.pk, instance_id=INSTANCE)
    finished = JobExecution.objects.get(pk=execution.pk)

    assert execution_run(execution.pk, instance_id="another-instance") is None

    assert len(calls) == 1
    again = JobExecution.objects.get(pk=execution.pk)
    assert (again.status, again.finished_at, again.instance_id) == (
        finished.status,
        finished.finished_at,
        finished.instance_id,
    )


@pytest.mark.parametrize("status", [ExecutionStatus.RUNNING, ExecutionStatus.SKIPPED, ExecutionStatus.MISSED])
def test_an_execution_no_longer_pending_is_not_run(recorder, status):
    row, calls = recorder
    execution = claimed_run(row)
    JobExecution.objects.filter(pk=execution.pk).update(status=status)

    assert execution_run(execution.pk, instance_id=INSTANCE) is None

    assert calls == []
    assert JobExecution.objects.get(pk=execution.pk).status == status


def test_inactive_task_function_fails_the_run_without_calling_code(recorder):
    row, calls = recorder
    execution = claimed_run(row)
    TaskFunction.objects.filter(pk=row.pk).update(is_active=False)

    execution_run(execution.pk, instance_id=INSTANCE)

    assert calls == [], "the function is still in the registry, but an inactive row never runs"
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    assert f"Task function {RECORDER!r} is inactive" in execution.error_message
    assert execution.started_at is None and execution.traceback == ""
    assert not JobLease.objects.filter(execution=execution).exists()


def test_unregistered_task_function_fails_the_run_with_a_clear_message():
    ghost = TaskFunction.objects.create(name="tasks.functions.deleted_in_code")
    execution = claimed_run(ghost)

    execution_run(execution.pk, instance_id=INSTANCE)

    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    assert "'tasks.functions.deleted_in_code' is not registered" in execution.error_message
    assert "sync_task_functions" in execution.error_message
    assert execution.started_at is None
    assert not JobLease.objects.filter(execution=execution).exists()


def test_a_run_started_elsewhere_is_left_alone_even_if_its_function_became_inactive(recorder):
    """A duplicate delivery of a run another process is executing must not fail that run."""
    row, calls = recorder
    execution = claimed_run(row)
    execution_start(execution, instance_id="the-other-process", hostname="elsewhere")
    TaskFunction.objects.filter(pk=row.pk).update(is_active=False)

    assert execution_run(execution.pk, instance_id=INSTANCE) is None

    execution.refresh_from_db()
    assert (execution.status, execution.instance_id) == (ExecutionStatus.RUNNING, "the-other-process")
    assert execution.error_message == ""


def test_outcome_of_a_run_reaped_while_it_ran_is_not_overwritten(monkeypatch, recorder):
    """If the lease expired and the reaper failed the run meanwhile, that record stands."""
    row, _ = recorder

    def outlived_its_lease(*args, **kwargs):
        leases_reap(now=timezone.now() + timedelta(days=1))
        return "finished too late"

    spec = dataclasses.replace(registry._registry[RECORDER], func=outlived_its_lease)
    monkeypatch.setitem(registry._registry, RECORDER, spec)
    execution = claimed_run(row)

    execution_run(execution.pk, instance_id=INSTANCE)

    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    assert execution.error_message.startswith(LEASE_EXPIRED)
    assert execution.result is None

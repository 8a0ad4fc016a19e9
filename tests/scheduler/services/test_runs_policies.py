"""Running a run under the run policies: the arguments each execution records and runs with
(a trigger with other arguments), per-job timeouts, and a cancel reaching a running inline run."""

import threading
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from scheduler import registry
from scheduler.enums import ExecutionStatus, ExecutionTrigger, OverlapPolicy
from scheduler.models import JobExecution, JobLease, ScheduledJob, TaskFunction
from scheduler.registry import current_run
from scheduler.services.cancels import cancels_requested, execution_cancel
from scheduler.services.claims import runs_claim
from scheduler.services.jobs import job_trigger, job_update
from scheduler.services.runs import execution_run
from tests.factories import ExecutionFactory, IntervalJobFactory, UserFactory
from tests.scheduler.engine.conftest import engine_db, wait_until  # noqa: F401 (engine_db: a fixture)

S = ExecutionStatus
INSTANCE = "policy-runner"
STUBBORN = "tests.scheduler.services.test_runs_policies.stubborn"


@pytest.fixture(autouse=True)
def only_test_jobs(db):
    ScheduledJob.objects.update(is_enabled=False, next_run_time=None)


def function(name: str) -> TaskFunction:
    return TaskFunction.objects.get(name=f"tasks.functions.{name}")


def job_on(name: str, **fields) -> ScheduledJob:
    """A job on a shipped task function that does not come due by itself."""
    job = IntervalJobFactory(task_function=function(name), interval_hours=1, interval_minutes=None, **fields)
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=None)
    return job


def claim_and_run(execution: JobExecution) -> JobExecution:
    [run] = runs_claim(instance_id=INSTANCE)
    assert run.execution_id == execution.pk
    execution_run(run.execution_id, instance_id=INSTANCE)
    execution.refresh_from_db()
    return execution


# --- the arguments a run records and runs with --------------------------------------------------


def test_a_trigger_with_other_arguments_records_them_and_runs_with_them(db):
    job = job_on("echo", args=["job's"], kwargs={"job": True})

    execution = job_trigger(job, args=[1, "two"], kwargs={"three": [3]})

    assert (execution.args, execution.kwargs) == ([1, "two"], {"three": [3]})
    assert claim_and_run(execution).result == {"args": [1, "two"], "kwargs": {"three": [3]}}
    job.refresh_from_db()
    assert (job.args, job.kwargs) == (["job's"], {"job": True}), "the job itself is unchanged"


def test_a_trigger_with_only_kwargs_keeps_the_jobs_args(db):
    job = job_on("echo", args=["job's"], kwargs={"job": True})

    execution = job_trigger(job, kwargs={"other": 1})

    assert claim_and_run(execution).result == {"args": ["job's"], "kwargs": {"other": 1}}


def test_a_plain_trigger_records_the_jobs_arguments_as_they_were_then(db):
    job = job_on("echo", args=["then"])
    execution = job_trigger(job)
    job_update(job, args=["edited after the trigger"])

    assert execution.args == ["then"] and execution.kwargs == {}
    assert claim_and_run(execution).result == {"args": ["then"], "kwargs": {}}


@pytest.mark.parametrize(
    "arguments, field, fragment",
    [
        ({"args": "not a list"}, "args", "args must be a JSON list"),
        ({"args": {"a": 1}}, "args", "args must be a JSON list"),
        ({"kwargs": [1]}, "kwargs", "kwargs must be a JSON object"),
        ({"args": [float("nan")]}, "args", "args cannot be stored"),
        ({"kwargs": {"text": "nul \x00 inside"}}, "kwargs", "kwargs cannot be stored"),
    ],
)
def test_a_trigger_with_bad_arguments_is_refused_naming_the_field(db, arguments, field, fragment):
    job = job_on("echo")

    with pytest.raises(ValidationError) as caught:
        job_trigger(job, **arguments)

    assert fragment in " ".join(caught.value.message_dict[field])
    assert not JobExecution.objects.filter(job=job).exists()


def test_every_scheduled_execution_records_the_arguments_of_its_fire_time(db):
    job = IntervalJobFactory(
        task_function=function("echo"),
        args=[1, {"two": 2}],
        kwargs={"k": [None, True]},
        interval_seconds=1,
        interval_minutes=None,
        coalesce=False,
        misfire_grace_time=2,
        overlap_policy=OverlapPolicy.BUFFER_ONE,
    )
    now = timezone.now()
    # Due 4 s ago, every second: two missed, then one started, one waiting and one skipped.
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=now - timedelta(seconds=4))
    runs_claim(instance_id=INSTANCE, now=now)

    rows = list(JobExecution.objects.filter(job=job).order_by("scheduled_time"))
    assert [e.status for e in rows] == [S.MISSED, S.MISSED, S.PENDING, S.WAITING, S.SKIPPED]
    assert [(e.args, e.kwargs) for e in rows] == [([1, {"two": 2}], {"k": [None, True]})] * 5


def test_an_execution_recorded_before_arguments_were_runs_with_the_jobs(db):
    job = job_on("echo", args=["from the job"])
    legacy = ExecutionFactory(job=job, trigger=ExecutionTrigger.MANUAL, instance_id="", args=None, kwargs=None)

    assert claim_and_run(legacy).result == {"args": ["from the job"], "kwargs": {}}


# --- timeouts ----------------------------------------------------------------------------------


@pytest.fixture
def stubborn(monkeypatch, db):
    """An inline task function that ignores cancel requests: it runs `seconds` whatever happens,
    and records what the run looked like from inside once it was past its timeout."""
    seen = {}

    def stubborn_function(seconds=1.5):
        began = time.monotonic()
        while time.monotonic() - began < seconds:
            time.sleep(0.05)
        context = current_run()
        seen["status_while_running"] = JobExecution.objects.get(pk=context.execution_id).status
        seen["cancel_requested"] = context.cancel_requested
        seen["ended_at"] = timezone.now()
        return "finished anyway"

    spec = registry.TaskSpec(
        name=STUBBORN, func=stubborn_function, description="", offload=False, queue="celery", timeout=None
    )
    monkeypatch.setitem(registry._registry, STUBBORN, spec)
    return TaskFunction.objects.create(name=STUBBORN), seen


def test_an_inline_run_past_its_timeout_ends_timed_out_only_once_its_function_returned(stubborn):
    task_function, seen = stubborn
    job = IntervalJobFactory(task_function=task_function, kwargs={"seconds": 1.5}, timeout=1)
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=None)

    execution = claim_and_run(job_trigger(job))

    assert seen["status_while_running"] == S.RUNNING, "past its timeout, still shown running while it runs"
    assert seen["cancel_requested"] is True, "the function could have seen that it should stop"
    assert execution.status == S.TIMED_OUT
    assert execution.finished_at >= seen["ended_at"]
    assert execution.duration_ms >= 1500
    assert execution.error_message.startswith("timed out: ran 1.")
    assert execution.error_message.endswith("s, past the timeout of 1s")
    assert execution.result == "finished anyway"
    assert not JobLease.objects.filter(execution=execution).exists()


def test_a_run_that_ends_within_its_timeout_succeeds(stubborn):
    task_function, _ = stubborn
    job = IntervalJobFactory(task_function=task_function, kwargs={"seconds": 0.1}, timeout=5)
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=None)

    assert claim_and_run(job_trigger(job)).status == S.SUCCESS


def test_the_shipped_sleep_stops_at_its_timeout(db):
    job = job_on("sleep", kwargs={"seconds": 60}, timeout=1)

    execution = claim_and_run(job_trigger(job))

    assert execution.status == S.TIMED_OUT
    assert 1000 <= execution.duration_ms < 30_000, "it stopped at the timeout, not after 60 s"
    assert "past the timeout of 1s" in execution.error_message


def test_the_jobs_timeout_overrides_its_task_functions(db):
    offloaded = IntervalJobFactory(task_function=function("sleep_offloaded"))
    assert offloaded.effective_timeout() == 3600, "the function's own"
    job_update(offloaded, timeout=5)
    offloaded.refresh_from_db()
    assert offloaded.effective_timeout() == 5

    inline = job_on("sleep", timeout=2)
    ScheduledJob.objects.filter(pk=inline.pk).update(next_run_time=timezone.now())
    [run] = runs_claim(instance_id=INSTANCE)
    assert run.target.timeout == 2


# --- a cancel reaching a running inline run -------------------------------------------------------


def run_in_thread(execution_id) -> threading.Thread:
    def target():
        try:
            execution_run(execution_id, instance_id=INSTANCE)
        finally:
            connection.close()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def deliver_cancels(execution_id):
    """What a scheduler process's cancel watcher does for the runs it holds."""
    for pk, reason in cancels_requested([execution_id]).items():
        registry.run_cancel(pk, reason)


@pytest.mark.usefixtures("engine_db")
def test_a_running_inline_sleep_ends_cancelled_soon_after_the_request_reaches_it():
    job = job_on("sleep", kwargs={"seconds": 60})
    operator = UserFactory(username="operator")
    execution = job_trigger(job)
    runs_claim(instance_id=INSTANCE)
    thread = run_in_thread(execution.pk)
    wait_until(lambda: JobExecution.objects.get(pk=execution.pk).status == S.RUNNING, 10, "the run started")

    assert execution_cancel(execution, user=operator).status == S.RUNNING
    deliver_cancels(execution.pk)
    thread.join(10)

    assert not thread.is_alive(), "the sleep honoured the cancel"
    execution.refresh_from_db()
    assert execution.status == S.CANCELLED
    assert execution.error_message == "cancelled by operator"
    assert execution.cancel_requested_by == operator and not execution.cancel_pending
    assert execution.duration_ms < 30_000
    assert not JobLease.objects.filter(execution=execution).exists()


@pytest.mark.usefixtures("engine_db")
def test_a_function_that_ignores_the_cancel_still_ends_cancelled_once_it_returns(stubborn):
    task_function, seen = stubborn
    job = IntervalJobFactory(task_function=task_function, kwargs={"seconds": 1.5}, max_retries=2)
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=None)
    execution = job_trigger(job)
    runs_claim(instance_id=INSTANCE)
    thread = run_in_thread(execution.pk)
    wait_until(lambda: JobExecution.objects.get(pk=execution.pk).status == S.RUNNING, 10, "the run started")

    execution_cancel(execution)
    deliver_cancels(execution.pk)
    thread.join(10)

    execution.refresh_from_db()
    assert seen["status_while_running"] == S.RUNNING
    assert execution.status == S.CANCELLED and execution.error_message == "cancelled"
    assert execution.finished_at >= seen["ended_at"]
    assert JobExecution.objects.filter(job=job).count() == 1, "a cancelled run is not retried"

"""What follows a failed run: a retry (new execution, attempt + 1, after a backoff with jitter,
once only), and a pause after pauseAfterFailures consecutive failures."""

from datetime import timedelta

import pytest

from scheduler.enums import ExecutionStatus, ExecutionTrigger, OverlapPolicy
from scheduler.models import JobExecution, JobLease, ScheduledJob, TaskFunction
from scheduler.services.claims import runs_claim
from scheduler.services.executions import (
    RunEnded,
    RunStarted,
    execution_end,
    execution_fail,
    execution_start,
    executions_record,
)
from scheduler.services.failures import failures_follow_up, retry_delay
from scheduler.services.jobs import job_delete, job_disable, job_pause, job_trigger
from scheduler.services.leases import LEASE_EXPIRED, leases_reap
from scheduler.services.runs import execution_run
from tests.scheduler.services.conftest import T0, A, B, interval_job

pytestmark = pytest.mark.usefixtures("only_test_jobs", "clock")

S = ExecutionStatus


def fail_function():
    return TaskFunction.objects.get(name="tasks.functions.fail")


def noop():
    return TaskFunction.objects.get(name="tasks.functions.noop")


def failing_job(**fields) -> ScheduledJob:
    fields.setdefault("task_function", fail_function())
    fields.setdefault("kwargs", {"message": "boom"})
    return interval_job(**fields)


def run_claimed(clock, instance_id=A) -> list[JobExecution]:
    """Claim what is due now and run it, as a scheduler process would."""
    ran = []
    for run in runs_claim(instance_id=instance_id, now=clock.now):
        execution_run(run.execution_id, instance_id=instance_id)
        ran.append(JobExecution.objects.get(pk=run.execution_id))
    return ran


def claimed_execution(clock, job, minutes=0) -> JobExecution:
    """Make the job due (after `minutes`) and claim its run, without running it."""
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=clock.advance(minutes=minutes))
    [run] = [run for run in runs_claim(instance_id=A, now=clock.now) if run.job_id == job.pk]
    return JobExecution.objects.get(pk=run.execution_id)


def attempts(job) -> list[JobExecution]:
    return list(JobExecution.objects.filter(job=job).order_by("attempt", "pk"))


def retry_of(execution) -> JobExecution:
    return JobExecution.objects.get(retry_of=execution)


# --- retries ---------------------------------------------------------------------------------------


def test_a_failed_run_is_retried_as_a_new_execution_linked_to_it(clock):
    failing_job(max_retries=2, retry_backoff=10, args=["boom"], kwargs={"extra": 3})
    [failed] = run_claimed(clock)

    assert failed.status == S.FAILED and failed.error_message == "TaskFunctionFailure: boom"
    retry = retry_of(failed)
    assert (retry.status, retry.trigger, retry.attempt, retry.instance_id) == (S.PENDING, ExecutionTrigger.RETRY, 2, "")
    assert (retry.args, retry.kwargs) == (["boom"], {"extra": 3}), "a retry runs with what its attempt ran with"
    assert retry.triggered_by is None
    assert T0 + timedelta(seconds=5) <= retry.scheduled_time <= T0 + timedelta(seconds=10)
    assert retry.finished_at is None and not JobLease.objects.filter(execution=retry).exists()


def test_a_retry_of_a_manual_run_keeps_who_asked_for_it_and_its_arguments(clock, user):
    job = failing_job(max_retries=1)
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=None)
    manual = job_trigger(job, user=user, kwargs={"message": "manual boom"})
    run_claimed(clock)

    retry = retry_of(manual)
    assert (retry.triggered_by, retry.kwargs, retry.trigger) == (user, {"message": "manual boom"}, "retry")


def test_a_retry_waits_out_its_backoff_then_runs_with_the_next_attempt_number(clock):
    job = failing_job(max_retries=1, retry_backoff=60)
    [failed] = run_claimed(clock)
    retry = retry_of(failed)

    clock.set(retry.scheduled_time - timedelta(seconds=1))
    assert runs_claim(instance_id=B, now=clock.now) == [], "not before its backoff has passed"

    clock.set(retry.scheduled_time)
    [run] = runs_claim(instance_id=B, now=clock.now)
    assert (run.execution_id, run.trigger, run.target.attempt) == (retry.pk, ExecutionTrigger.RETRY, 2)
    assert JobLease.objects.get(execution_id=retry.pk).locked_by == B
    execution_run(run.execution_id, instance_id=B)
    assert JobExecution.objects.get(pk=retry.pk).status == S.FAILED
    assert len(attempts(job)) == 2, "max_retries=1: one retry, then no more"


def test_every_attempt_is_recorded_up_to_max_retries_and_no_further(clock):
    job = failing_job(max_retries=3, retry_backoff=1)
    run_claimed(clock)
    for _ in range(5):
        pending = JobExecution.objects.filter(job=job, status=S.PENDING).first()
        if pending is None:
            break
        clock.set(pending.scheduled_time)
        run_claimed(clock)

    chain = attempts(job)
    assert [(e.attempt, e.status) for e in chain] == [(n, S.FAILED) for n in (1, 2, 3, 4)]
    assert [e.trigger for e in chain] == [ExecutionTrigger.SCHEDULED] + [ExecutionTrigger.RETRY] * 3
    assert [e.retry_of_id for e in chain] == [None] + [e.pk for e in chain[:-1]]
    # The job's last status is the last attempt's.
    assert ScheduledJob.objects.with_last_execution().get(pk=job.pk).last_execution_id == chain[-1].pk


def test_follow_up_run_twice_still_retries_once(clock):
    job = failing_job(max_retries=5)
    [failed] = run_claimed(clock)

    failures_follow_up([failed.pk])
    failures_follow_up([failed.pk])

    assert JobExecution.objects.filter(job=job, trigger=ExecutionTrigger.RETRY).count() == 1


def test_timed_out_and_lost_runs_are_retried_too(clock):
    job = failing_job(max_retries=1, task_function=noop(), max_instances=2)
    timed_out, lost = (claimed_execution(clock, job, minutes=m) for m in (0, 5))
    execution_start(timed_out, instance_id=A)
    execution_end(timed_out, status=S.TIMED_OUT, error="timed out: ran 2.0s, past the timeout of 1s")
    execution_start(lost, instance_id=A)
    JobLease.objects.filter(execution=lost).update(expires_at=clock.now - timedelta(seconds=1))

    leases_reap(now=clock.now)

    lost.refresh_from_db()
    assert lost.status == S.FAILED and lost.error_message.startswith(LEASE_EXPIRED)
    assert retry_of(timed_out).attempt == 2
    assert retry_of(lost).attempt == 2


def test_runs_recorded_in_a_batch_are_retried_like_the_others(clock):
    job = failing_job(max_retries=1, task_function=noop())
    execution = claimed_execution(clock, job)

    executions_record(
        [RunStarted(execution.pk, clock.now, A, "host")],
        [RunEnded(execution.pk, S.FAILED, clock.now, clock.now, error="RuntimeError: x")],
    )

    assert retry_of(execution).attempt == 2


def test_max_retries_zero_never_retries(clock):
    job = failing_job()
    run_claimed(clock)

    assert [e.attempt for e in attempts(job)] == [1]


def test_a_cancelled_run_is_not_retried(clock):
    job = failing_job(max_retries=3, task_function=noop(), max_instances=2)
    cancelled, cancel_then_failed = (claimed_execution(clock, job, minutes=m) for m in (0, 5))
    execution_end(cancelled, status=S.CANCELLED, error="cancelled by someone")
    # A run asked to stop that then failed anyway (e.g. could not be sent to Celery) is not retried either.
    JobExecution.objects.filter(pk=cancel_then_failed.pk).update(cancel_requested_at=clock.now)
    execution_fail(cancel_then_failed, error="could not send the run to the Celery broker")

    assert not JobExecution.objects.filter(job=job, trigger=ExecutionTrigger.RETRY).exists()


def test_a_success_is_not_retried(clock):
    job = failing_job(max_retries=3, task_function=noop())
    [ran] = run_claimed(clock)

    assert ran.status == S.SUCCESS
    assert attempts(job) == [ran]


def test_a_deleted_jobs_failed_run_is_not_retried(clock):
    job = failing_job(max_retries=3, task_function=noop())
    execution = claimed_execution(clock, job)
    job_delete(job)

    execution_fail(execution, error="boom")

    assert not JobExecution.objects.filter(job=job, trigger=ExecutionTrigger.RETRY).exists()


@pytest.mark.parametrize("stop, state", [(job_pause, "paused"), (job_disable, "disabled")])
def test_a_retry_due_after_its_job_was_paused_or_disabled_is_skipped(clock, stop, state):
    job = failing_job(max_retries=3)
    [failed] = run_claimed(clock)
    retry = retry_of(failed)
    stop(job)

    clock.set(retry.scheduled_time)
    assert runs_claim(instance_id=A, now=clock.now) == []

    retry.refresh_from_db()
    assert retry.status == S.SKIPPED
    assert retry.error_message == f"skipped: the job is {state}; its retries stop"
    assert JobExecution.objects.filter(job=job).count() == 2, "and it is not retried in turn"


def test_a_retry_obeys_the_overlap_policy_of_its_job(clock):
    job = failing_job(max_retries=1, overlap_policy=OverlapPolicy.BUFFER_ONE, interval_seconds=1, interval_minutes=None)
    [failed] = run_claimed(clock)
    retry = retry_of(failed)
    # A scheduled run holds the only slot when the retry comes due.
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=retry.scheduled_time)
    clock.set(retry.scheduled_time)

    claimed = runs_claim(instance_id=A, now=clock.now)

    assert [run.trigger for run in claimed] == [ExecutionTrigger.SCHEDULED]
    retry.refresh_from_db()
    assert (retry.status, retry.instance_id) == (S.WAITING, "")


# --- the backoff -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "backoff, attempt, low, high",
    [(10, 1, 5, 10), (10, 2, 10, 20), (10, 3, 20, 40), (1, 4, 4, 8), (0, 1, 0, 0)],
)
def test_backoff_doubles_per_attempt_with_jitter_of_up_to_half(backoff, attempt, low, high):
    delays = {retry_delay(backoff, attempt).total_seconds() for _ in range(200)}

    assert all(low <= d <= high for d in delays), (min(delays), max(delays))
    if high:
        assert len(delays) > 100, "jitter: retries failing together do not retry together"
        assert min(delays) < low + (high - low) / 4 and max(delays) > high - (high - low) / 4


def test_backoff_is_capped_however_many_attempts_failed(settings):
    settings.SCHEDULER_RETRY_BACKOFF_MAX = 30

    for attempt in (3, 4, 10, 100):
        delays = [retry_delay(10, attempt).total_seconds() for _ in range(50)]
        assert all(15 <= d <= 30 for d in delays), (attempt, min(delays), max(delays))


def test_a_retry_is_scheduled_within_the_backoff_of_its_attempt(clock):
    job = failing_job(max_retries=3, retry_backoff=100)
    run_claimed(clock)
    for attempt in (2, 3):
        [pending] = JobExecution.objects.filter(job=job, status=S.PENDING)
        failed_at = clock.set(pending.scheduled_time)
        run_claimed(clock)
        retry = JobExecution.objects.get(job=job, status=S.PENDING)
        ceiling = 100 * 2 ** (attempt - 1)
        assert failed_at + timedelta(seconds=ceiling / 2) <= retry.scheduled_time
        assert retry.scheduled_time <= failed_at + timedelta(seconds=ceiling)


# --- pause after repeated failures -----------------------------------------------------------------


def fire_and_run(clock, job, **kwargs):
    if kwargs:
        ScheduledJob.objects.filter(pk=job.pk).update(**kwargs)
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=clock.advance(minutes=5))
    return run_claimed(clock)


def test_n_consecutive_failures_pause_the_job_saying_why(clock):
    job = failing_job(pause_after_failures=3)
    run_claimed(clock)
    fire_and_run(clock, job)
    job.refresh_from_db()
    assert not job.is_paused, "two failures are not three"

    fire_and_run(clock, job, kwargs={"message": "disk full"})

    job.refresh_from_db()
    assert job.is_paused
    assert job.pause_reason == "paused after 3 consecutive failures: TaskFunctionFailure: disk full"
    assert ScheduledJob.objects.due(clock.advance(minutes=5)).filter(pk=job.pk).count() == 0


def test_a_success_breaks_the_streak(clock):
    job = failing_job(pause_after_failures=2)
    run_claimed(clock)
    fire_and_run(clock, job, task_function_id=noop().pk)
    fire_and_run(clock, job, task_function_id=fail_function().pk)
    job.refresh_from_db()
    assert not job.is_paused, "fail, success, fail: no two in a row"

    fire_and_run(clock, job)

    job.refresh_from_db()
    assert job.is_paused and job.pause_reason.startswith("paused after 2 consecutive failures: ")


def test_runs_that_never_ran_neither_break_nor_extend_the_streak(clock):
    job = failing_job(pause_after_failures=2)
    run_claimed(clock)
    # A missed run in between (far too late for its grace time) did not run: the streak goes on.
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=clock.now + timedelta(minutes=1))
    runs_claim(instance_id=A, now=clock.advance(hours=1))
    assert JobExecution.objects.filter(job=job, status=S.MISSED).exists()
    job.refresh_from_db()
    assert not job.is_paused

    fire_and_run(clock, job)

    job.refresh_from_db()
    assert job.is_paused


def test_retries_count_as_failures_and_the_pause_stops_them(clock):
    job = failing_job(pause_after_failures=2, max_retries=5, retry_backoff=1)
    [first] = run_claimed(clock)
    second = retry_of(first)
    clock.set(second.scheduled_time)
    run_claimed(clock)

    job.refresh_from_db()
    assert job.is_paused and job.pause_reason.startswith("paused after 2 consecutive failures")
    third = retry_of(second)
    clock.set(third.scheduled_time)
    assert runs_claim(instance_id=A, now=clock.now) == []
    third.refresh_from_db()
    assert third.status == S.SKIPPED


def test_without_pause_after_failures_a_job_never_pauses(clock):
    job = failing_job()
    run_claimed(clock)
    for _ in range(4):
        fire_and_run(clock, job)

    job.refresh_from_db()
    assert not job.is_paused
    assert JobExecution.objects.filter(job=job, status=S.FAILED).count() == 5

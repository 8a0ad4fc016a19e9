"""execution_cancel for each status: unclaimed runs end cancelled at once and never start; claimed
and running ones are asked to stop and end cancelled once they have; finished ones are refused."""

import pytest
from django.core.exceptions import ValidationError

from scheduler.enums import ExecutionStatus, OverlapPolicy
from scheduler.models import JobExecution, JobLease, ScheduledJob
from scheduler.services.cancels import cancels_requested, execution_cancel
from scheduler.services.claims import runs_claim, runs_release
from scheduler.services.executions import execution_start
from scheduler.services.job_actions import job_action_apply
from scheduler.services.jobs import job_trigger
from scheduler.services.leases import LEASE_EXPIRED, leases_reap
from scheduler.services.runs import execution_run
from tests.factories import UserFactory
from tests.scheduler.services.conftest import A, B, execution_of, interval_job

pytestmark = pytest.mark.usefixtures("only_test_jobs", "clock")

S = ExecutionStatus


@pytest.fixture
def operator(db):
    return UserFactory(username="operator")


def claimed(clock, job=None, **fields) -> JobExecution:
    job = job or interval_job(**fields)
    [run] = runs_claim(instance_id=A, now=clock.now)
    return JobExecution.objects.get(pk=run.execution_id)


def waiting_run(clock) -> tuple[JobExecution, JobExecution]:
    """A buffer_all job's claimed run, and the run due next that waits for its slot."""
    first = claimed(clock, overlap_policy=OverlapPolicy.BUFFER_ALL)
    runs_claim(instance_id=A, now=clock.advance(minutes=5))
    return first, JobExecution.objects.get(job=first.job, status=S.WAITING)


def test_a_waiting_run_is_cancelled_at_once_and_never_starts(clock, operator):
    first, waiting = waiting_run(clock)

    cancelled = execution_cancel(waiting, user=operator)

    assert cancelled.status == S.CANCELLED
    waiting.refresh_from_db()
    assert (waiting.status, waiting.finished_at, waiting.started_at) == (S.CANCELLED, clock.now, None)
    assert (waiting.cancel_requested_at, waiting.cancel_requested_by) == (clock.now, operator)
    assert waiting.cancel_reason == waiting.error_message == "cancelled by operator"
    assert not waiting.cancel_pending, "it has ended: nothing left to request"
    execution_run(first.pk, instance_id=A)
    assert runs_claim(instance_id=B, now=clock.now) == [], "the freed slot does not start it"
    assert JobExecution.objects.get(pk=waiting.pk).status == S.CANCELLED


def test_an_unclaimed_manual_run_is_cancelled_at_once_and_never_claimed(clock, operator):
    job = interval_job()
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=None)  # a claim sees only the manual run
    execution = job_trigger(job, user=operator)

    assert execution_cancel(execution, user=operator).status == S.CANCELLED

    assert runs_claim(instance_id=A, now=clock.now) == []
    execution.refresh_from_db()
    assert execution.status == S.CANCELLED and execution.cancel_requested_by == operator
    assert not JobLease.objects.filter(execution=execution).exists()


def test_a_claimed_run_is_asked_to_stop_and_ends_cancelled_without_starting(
    clock, operator, announcements, django_capture_on_commit_callbacks
):
    execution = claimed(clock)

    with django_capture_on_commit_callbacks(execute=True):
        asked = execution_cancel(execution, user=operator)

    assert asked.status == S.PENDING and asked.cancel_pending
    assert announcements == [(execution.job_id, execution.pk)], "the processes look for cancels at once"
    assert cancels_requested([execution.pk]) == {execution.pk: "cancelled by operator"}
    assert JobLease.objects.filter(execution=execution).exists(), "its slot stays held until it ends"

    execution_run(execution.pk, instance_id=A)  # its process gets round to it

    execution.refresh_from_db()
    assert (execution.status, execution.started_at) == (S.CANCELLED, None)
    assert execution.error_message == "cancelled by operator"
    assert not JobLease.objects.filter(execution=execution).exists()
    assert cancels_requested([execution.pk]) == {}


def test_a_running_run_is_asked_to_stop_and_keeps_running_until_its_process_ends_it(clock, operator):
    execution = claimed(clock)
    execution_start(execution, instance_id=A)

    asked = execution_cancel(execution, user=operator)

    assert asked.status == S.RUNNING and asked.cancel_pending
    execution.refresh_from_db()
    assert (execution.status, execution.finished_at) == (S.RUNNING, None)
    assert (execution.cancel_requested_at, execution.cancel_requested_by) == (clock.now, operator)
    assert cancels_requested([execution.pk]) == {execution.pk: "cancelled by operator"}


def test_a_run_asked_to_stop_whose_process_died_ends_cancelled_and_is_not_retried(clock, operator):
    execution = claimed(clock, max_retries=3)
    execution_start(execution, instance_id=A)
    execution_cancel(execution, user=operator)
    JobLease.objects.filter(execution=execution).update(expires_at=clock.now)

    leases_reap(now=clock.advance(seconds=1))

    execution.refresh_from_db()
    assert execution.status == S.CANCELLED
    assert execution.error_message == f"cancelled by operator ({LEASE_EXPIRED} (held by {A}))"
    assert JobExecution.objects.filter(job=execution.job).count() == 1


def test_a_second_cancel_keeps_the_first_request_time(clock, operator):
    execution = claimed(clock)
    execution_cancel(execution, user=operator)
    first_asked = clock.now

    clock.advance(seconds=30)
    execution_cancel(execution, user=UserFactory(username="second"))

    execution.refresh_from_db()
    assert execution.cancel_requested_at == first_asked
    assert execution.status == S.PENDING


def test_a_cancel_without_a_user_says_only_cancelled(clock):
    execution = claimed(clock)

    execution_cancel(execution)

    execution.refresh_from_db()
    assert (execution.cancel_reason, execution.cancel_requested_by) == ("cancelled", None)


@pytest.mark.parametrize("status", [S.SUCCESS, S.FAILED, S.TIMED_OUT, S.CANCELLED, S.SKIPPED, S.MISSED])
def test_a_finished_run_cannot_be_cancelled_and_the_error_names_execution_id(status, operator):
    execution = execution_of(interval_job(), status=status)

    with pytest.raises(ValidationError) as caught:
        execution_cancel(execution, user=operator)

    message = caught.value.message_dict["execution_id"][0]
    assert message.startswith(f"Execution {execution.pk} is {execution.get_status_display()};")
    assert "only a pending, waiting or running run can be cancelled" in message
    execution.refresh_from_db()
    assert execution.status == status and execution.cancel_requested_at is None


def test_the_decision_is_made_on_the_stored_status_not_the_callers_copy(clock, operator):
    execution = claimed(clock)
    stale = JobExecution.objects.get(pk=execution.pk)
    execution_run(execution.pk, instance_id=A)  # it ended meanwhile

    with pytest.raises(ValidationError):
        execution_cancel(stale, user=operator)


def test_the_cancel_action_refuses_a_run_of_another_job(clock, operator):
    execution = claimed(clock)
    other = interval_job()

    with pytest.raises(ValidationError) as caught:
        job_action_apply(other, "cancel", user=operator, execution_id=execution.pk)

    assert caught.value.message_dict == {
        "execution_id": [f"Job {other.pk} has no run with execution id {execution.pk}."]
    }
    assert JobExecution.objects.get(pk=execution.pk).cancel_requested_at is None


def test_the_cancel_action_needs_an_execution_id(operator):
    with pytest.raises(ValidationError) as caught:
        job_action_apply(interval_job(), "cancel", user=operator)

    assert "execution_id" in caught.value.message_dict


def test_cancels_requested_reports_only_unfinished_runs_asked_to_stop(clock, operator):
    job = interval_job(overlap_policy=OverlapPolicy.ALLOW_ALL)
    asked = claimed(clock, job)
    runs_claim(instance_id=A, now=clock.advance(minutes=5))
    not_asked = JobExecution.objects.filter(job=job).exclude(pk=asked.pk).get()
    execution_cancel(asked, user=operator)

    assert cancels_requested([asked.pk, not_asked.pk]) == {asked.pk: "cancelled by operator"}


def test_a_run_cancelled_while_claimed_and_then_given_back_is_never_started_elsewhere(clock, operator):
    execution = claimed(clock)
    execution_cancel(execution, user=operator)
    # Its process stops before it got round to the run, and gives it back unstarted.
    runs_release([execution.pk], instance_id=A)

    assert runs_claim(instance_id=B, now=clock.now) == [], "no process may start a run someone cancelled"

    execution.refresh_from_db()
    assert (execution.status, execution.started_at) == (S.CANCELLED, None)
    assert execution.error_message == "cancelled by operator"
    assert not JobLease.objects.filter(execution=execution).exists()

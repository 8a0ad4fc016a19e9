"""Run policies through the API: the job's policy fields (400s naming the field), cancel as a run
action (200 when cancelled at once, 202 while being stopped), trigger with other arguments, and
the executions' attempt, retry and cancel fields."""

import pytest

from scheduler.enums import ExecutionStatus, ExecutionTrigger, OverlapPolicy
from scheduler.models import JobExecution, ScheduledJob
from scheduler.services.claims import runs_claim
from scheduler.services.executions import execution_start
from scheduler.services.jobs import job_delete, job_trigger
from tests.factories import ExecutionFactory, IntervalJobFactory
from tests.scheduler.api.conftest import JOBS, action_url, client_for, history_url, job_url, user_with
from tests.scheduler.api.test_validation import assert_field_error

pytestmark = pytest.mark.django_db

S = ExecutionStatus
POLICY_DEFAULTS = {
    "overlapPolicy": "skip",
    "maxRetries": 0,
    "retryBackoff": 10,
    "timeout": None,
    "pauseAfterFailures": None,
}


@pytest.fixture(autouse=True)
def only_test_jobs(db):
    ScheduledJob.objects.update(is_enabled=False, next_run_time=None)


def act(client, job, action, **extra):
    return client.post(action_url(job.pk), {"action": action, **extra}, format="json")


def claimed_manual_run(job, *, start=False) -> JobExecution:
    """A manual run of `job` that a scheduler process claimed (and started, with start=True)."""
    execution = job_trigger(job)
    [run] = runs_claim(instance_id="api-test")
    assert run.execution_id == execution.pk
    execution.refresh_from_db()
    if start:
        execution_start(execution, instance_id="api-test")
    return execution


# --- the policy fields -----------------------------------------------------------------------------


def test_a_new_job_has_the_default_policies(client, interval_body):
    body = client.post(JOBS, interval_body, format="json").json()

    assert {field: body[field] for field in POLICY_DEFAULTS} == POLICY_DEFAULTS


def test_policies_are_written_read_back_and_changed(client, interval_body):
    policies = {
        "overlapPolicy": "buffer_all",
        "maxRetries": 100,
        "retryBackoff": 0,
        "timeout": 30,
        "pauseAfterFailures": 3,
    }
    created = client.post(JOBS, {**interval_body, **policies}, format="json")
    assert created.status_code == 201, created.content
    job_id = created.json()["id"]

    assert {field: client.get(job_url(job_id)).json()[field] for field in policies} == policies
    job = ScheduledJob.objects.get(pk=job_id)
    assert (job.overlap_policy, job.max_retries, job.retry_backoff, job.timeout, job.pause_after_failures) == (
        "buffer_all",
        100,
        0,
        30,
        3,
    )

    changed = client.patch(job_url(job_id), {"overlapPolicy": "cancel_other", "timeout": None}, format="json")
    assert changed.status_code == 200, changed.content
    assert (changed.json()["overlapPolicy"], changed.json()["timeout"]) == ("cancel_other", None)


@pytest.mark.parametrize("policy", list(OverlapPolicy))
def test_every_overlap_policy_is_accepted(client, interval_body, policy):
    response = client.post(JOBS, {**interval_body, "overlapPolicy": policy.value}, format="json")

    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("overlapPolicy", "sometimes", 'Unknown overlap policy "sometimes": use skip, buffer_one, buffer_all'),
        ("overlapPolicy", "SKIP", "Unknown overlap policy"),
        ("overlapPolicy", None, "null"),
        ("overlapPolicy", ["skip"], ""),
        ("maxRetries", 101, "less than or equal to 100"),
        ("maxRetries", -1, "greater than or equal to 0"),
        ("maxRetries", "many", "valid integer"),
        ("retryBackoff", -1, "greater than or equal to 0"),
        ("retryBackoff", 2**31, "less than or equal to"),
        ("timeout", 0, "greater than or equal to 1"),
        ("timeout", -5, "greater than or equal to 1"),
        ("timeout", 1.5, "valid integer"),
        ("timeout", 2**31, "less than or equal to"),
        ("pauseAfterFailures", 0, "greater than or equal to 1"),
        ("pauseAfterFailures", "x", "valid integer"),
    ],
)
def test_bad_policy_values_are_400s_naming_the_field(client, interval_body, field, value, fragment):
    response = client.post(JOBS, {**interval_body, field: value}, format="json")

    assert_field_error(response, field, fragment)
    assert not ScheduledJob.objects.filter(name=interval_body["name"]).exists()


def test_a_bad_policy_in_a_patch_names_the_field_and_changes_nothing(client, interval_job):
    response = client.patch(job_url(interval_job.pk), {"maxRetries": 101, "timeout": 0}, format="json")

    assert response.status_code == 400
    assert {"maxRetries", "timeout"} <= set(response.json())
    interval_job.refresh_from_db()
    assert (interval_job.max_retries, interval_job.timeout) == (0, None)


# --- cancel ----------------------------------------------------------------------------------------


def test_cancel_of_a_waiting_run_is_200_with_the_run_cancelled(client, superuser):
    job = IntervalJobFactory(overlap_policy=OverlapPolicy.BUFFER_ONE)
    claimed_manual_run(job)
    waiting = job_trigger(job)
    runs_claim(instance_id="api-test")
    assert JobExecution.objects.get(pk=waiting.pk).status == S.WAITING

    response = act(client, job, "cancel", executionId=waiting.pk)

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["status"], body["cancelRequested"]) == (waiting.pk, "cancelled", False)
    assert body["cancelRequestedBy"] == superuser.username and body["cancelRequestedAt"] is not None
    assert body["cancelReason"] == f"cancelled by {superuser.username}"
    assert JobExecution.objects.get(pk=waiting.pk).status == S.CANCELLED


def test_cancel_of_an_unclaimed_pending_run_is_200(client, interval_job):
    execution = job_trigger(interval_job)

    response = act(client, interval_job, "cancel", executionId=execution.pk)

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


@pytest.mark.parametrize("start", [False, True], ids=["claimed", "running"])
def test_cancel_of_a_claimed_or_running_run_is_202_showing_cancel_requested(client, superuser, start):
    job = IntervalJobFactory()
    execution = claimed_manual_run(job, start=start)

    response = act(client, job, "cancel", executionId=execution.pk)

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == ("running" if start else "pending")
    assert body["cancelRequested"] is True
    assert body["cancelRequestedBy"] == superuser.username
    assert body["cancelReason"] == f"cancelled by {superuser.username}"
    history = client.get(history_url(job.pk)).json()["results"]
    assert [(run["id"], run["cancelRequested"]) for run in history] == [(execution.pk, True)]


def test_cancel_without_an_execution_id_names_execution_id(client, interval_job):
    assert_field_error(act(client, interval_job, "cancel"), "executionId", "execution id")


@pytest.mark.parametrize("value", [0, -1, "seven", None, 2**63])
def test_cancel_with_a_malformed_execution_id_names_execution_id(client, interval_job, value):
    assert_field_error(act(client, interval_job, "cancel", executionId=value), "executionId")


def test_cancel_of_another_jobs_run_names_execution_id_and_changes_nothing(client, interval_job):
    other = IntervalJobFactory()
    execution = job_trigger(other)

    response = act(client, interval_job, "cancel", executionId=execution.pk)

    assert_field_error(response, "executionId", f"has no run with execution id {execution.pk}")
    assert JobExecution.objects.get(pk=execution.pk).status == S.PENDING


def test_cancel_of_a_missing_execution_names_execution_id(client, interval_job):
    assert_field_error(act(client, interval_job, "cancel", executionId=987654), "executionId", "no run")


@pytest.mark.parametrize("status", [S.SUCCESS, S.FAILED, S.TIMED_OUT, S.CANCELLED, S.SKIPPED, S.MISSED])
def test_cancel_of_a_finished_run_names_execution_id(client, interval_job, status):
    execution = ExecutionFactory(job=interval_job, status=status)

    assert_field_error(
        act(client, interval_job, "cancel", executionId=execution.pk),
        "executionId",
        "only a pending, waiting or running run can be cancelled",
    )


@pytest.mark.parametrize("action", ["trigger", "pause", "resume", "enable", "disable"])
def test_an_execution_id_on_a_job_action_names_execution_id(client, interval_job, action):
    assert_field_error(act(client, interval_job, action, executionId=1), "executionId", "leave executionId out")


def test_cancel_needs_the_cancel_permission(interval_job):
    execution = job_trigger(interval_job)
    # Everything on jobs, but not the run permission.
    operator = user_with("view_scheduledjob", "change_scheduledjob", "trigger_scheduledjob", username="op")

    response = act(client_for(operator), interval_job, "cancel", executionId=execution.pk)

    assert response.status_code == 403
    assert "permission to cancel runs" in response.json()["detail"]
    assert JobExecution.objects.get(pk=execution.pk).status == S.PENDING


def test_the_cancel_permission_alone_is_enough_to_cancel(interval_job):
    execution = job_trigger(interval_job)
    canceller = user_with("cancel_jobexecution", username="canceller")

    response = act(client_for(canceller), interval_job, "cancel", executionId=execution.pk)

    assert response.status_code == 200, response.content
    assert response.json()["cancelRequestedBy"] == "canceller"
    # ... and it lets them do nothing else.
    assert act(client_for(canceller), interval_job, "pause").status_code == 403


def test_cancel_of_a_deleted_jobs_run_is_404(client, interval_job):
    execution = job_trigger(interval_job)
    job_delete(interval_job)

    assert act(client, interval_job, "cancel", executionId=execution.pk).status_code == 404


# --- trigger with other arguments -----------------------------------------------------------------


def test_trigger_with_args_and_kwargs_records_them_on_the_run(client):
    job = IntervalJobFactory(args=["job's"], kwargs={"job": 1})

    response = act(client, job, "trigger", args=[1, None, "x"], kwargs={"seconds": 5})

    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["args"], body["kwargs"]) == ([1, None, "x"], {"seconds": 5})
    execution = JobExecution.objects.get(pk=body["id"])
    assert (execution.args, execution.kwargs) == ([1, None, "x"], {"seconds": 5})
    assert client.get(job_url(job.pk)).json()["args"] == ["job's"]


def test_trigger_without_arguments_records_the_jobs(client):
    job = IntervalJobFactory(args=[7], kwargs={"k": "v"})

    body = act(client, job, "trigger").json()

    assert (body["args"], body["kwargs"]) == ([7], {"k": "v"})


@pytest.mark.parametrize(
    "extra, field, fragment",
    [
        ({"args": "1, 2"}, "args", "args must be a JSON list"),
        ({"args": {"a": 1}}, "args", "args must be a JSON list"),
        ({"kwargs": [1]}, "kwargs", "kwargs must be a JSON object"),
        ({"kwargs": "seconds=5"}, "kwargs", "kwargs must be a JSON object"),
        ({"args": ["nul \u0000"]}, "args", "cannot be stored"),
    ],
)
def test_trigger_with_bad_arguments_names_the_field(client, interval_job, extra, field, fragment):
    response = act(client, interval_job, "trigger", **extra)

    assert_field_error(response, field, fragment)
    assert not JobExecution.objects.filter(job=interval_job).exists()


@pytest.mark.parametrize("action", ["pause", "resume", "enable", "disable", "cancel"])
@pytest.mark.parametrize("field", ["args", "kwargs"])
def test_arguments_on_another_action_name_the_field(client, interval_job, action, field):
    response = act(client, interval_job, action, **{field: [] if field == "args" else {}}, executionId=1)

    assert_field_error(response, field, f"Only trigger takes {field}")


def test_pause_with_args_is_a_400_naming_args_and_does_not_pause(client, interval_job):
    response = act(client, interval_job, "pause", args=[1])

    assert_field_error(response, "args", "Only trigger takes args")
    interval_job.refresh_from_db()
    assert not interval_job.is_paused


# --- executions ------------------------------------------------------------------------------------


def test_executions_show_their_arguments_attempt_and_the_run_they_retry(client, interval_job):
    first = ExecutionFactory(job=interval_job, status=S.FAILED, args=[1], kwargs={})
    retry = ExecutionFactory(
        job=interval_job, trigger=ExecutionTrigger.RETRY, attempt=2, retry_of=first, args=[1], kwargs={}
    )

    runs = {run["id"]: run for run in client.get(history_url(interval_job.pk)).json()["results"]}

    assert {key: runs[retry.pk][key] for key in ("trigger", "attempt", "retryOf", "args", "kwargs")} == {
        "trigger": "retry",
        "attempt": 2,
        "retryOf": first.pk,
        "args": [1],
        "kwargs": {},
    }
    assert (runs[first.pk]["attempt"], runs[first.pk]["retryOf"]) == (1, None)
    assert {"cancelRequested", "cancelRequestedAt", "cancelRequestedBy", "cancelReason"} <= set(runs[first.pk])
    assert runs[first.pk]["cancelRequestedBy"] is None


def test_history_filters_by_the_new_statuses(client, interval_job):
    for status in (S.WAITING, S.TIMED_OUT, S.CANCELLED):
        ExecutionFactory(job=interval_job, status=status)

    for status in ("waiting", "timed_out", "cancelled"):
        response = client.get(history_url(interval_job.pk), {"status": status})
        assert response.status_code == 200, response.content
        assert [run["status"] for run in response.json()["results"]] == [status]

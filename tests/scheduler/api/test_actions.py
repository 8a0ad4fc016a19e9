"""POST /jobs/{id}/action: trigger (202 + execution), pause, resume, enable, disable (200 + job)."""

import pytest

from scheduler.models import ExecutionStatus, ExecutionTrigger, JobExecution, TaskFunction
from scheduler.services.jobs import job_delete, job_disable, job_pause
from tests.scheduler.api.conftest import action_url, job_url

pytestmark = pytest.mark.django_db


def act(client, job, action, **extra):
    return client.post(action_url(job.pk), {"action": action, **extra}, format="json")


def test_trigger_records_a_pending_manual_run_and_answers_202(client, interval_job, superuser):
    response = act(client, interval_job, "trigger")

    assert response.status_code == 202, response.content
    body = response.json()
    execution = JobExecution.objects.get(pk=body["id"])
    assert execution.job == interval_job
    assert execution.status == ExecutionStatus.PENDING
    assert execution.trigger == ExecutionTrigger.MANUAL
    assert execution.triggered_by == superuser
    assert body["jobId"] == interval_job.pk
    assert body["status"] == "pending" and body["trigger"] == "manual"
    assert body["triggeredBy"] == superuser.username
    assert body["startedAt"] is None and body["result"] is None
    assert client.get(job_url(interval_job.pk)).json()["lastExecutionStatus"] == "pending"


def test_trigger_works_on_paused_and_disabled_jobs(client, interval_job):
    job_pause(interval_job)
    job_disable(interval_job)

    assert act(client, interval_job, "trigger").status_code == 202


def test_trigger_refuses_a_job_whose_task_function_is_inactive(client, interval_job):
    TaskFunction.objects.filter(pk=interval_job.task_function_id).update(is_active=False)

    response = act(client, interval_job, "trigger")

    assert response.status_code == 400
    assert "inactive" in response.json()["taskFunctionId"][0]
    assert not JobExecution.objects.filter(job=interval_job).exists()


def test_pause_with_reason_then_resume(client, interval_job):
    paused = act(client, interval_job, "pause", reason="  database migration  ")

    assert paused.status_code == 200, paused.content
    assert paused.json()["isPaused"] is True
    assert paused.json()["pauseReason"] == "database migration"

    resumed = act(client, interval_job, "resume")

    assert resumed.status_code == 200
    assert resumed.json()["isPaused"] is False and resumed.json()["pauseReason"] == ""
    assert resumed.json()["nextRunTime"] is not None


def test_pause_without_reason(client, interval_job):
    response = act(client, interval_job, "pause")

    assert response.status_code == 200
    assert response.json()["isPaused"] is True and response.json()["pauseReason"] == ""


def test_disable_takes_the_job_off_the_schedule_and_enable_puts_it_back(client, interval_job):
    disabled = act(client, interval_job, "disable")

    assert disabled.status_code == 200
    assert disabled.json()["isEnabled"] is False and disabled.json()["nextRunTime"] is None

    enabled = act(client, interval_job, "enable")

    assert enabled.status_code == 200
    assert enabled.json()["isEnabled"] is True and enabled.json()["nextRunTime"] is not None


def test_actions_answer_with_the_full_job(client, interval_job):
    body = act(client, interval_job, "pause").json()

    assert body["id"] == interval_job.pk
    assert {"taskFunctionName", "jobTypeName", "schedule", "lastExecutionStatus"} <= set(body)


@pytest.mark.parametrize("action", ["explode", "PAUSE", "", "delete"])
def test_unknown_action_is_a_400_listing_the_valid_ones(client, interval_job, action):
    response = act(client, interval_job, action)

    assert response.status_code == 400
    assert "use trigger, pause, resume, enable, disable or cancel" in response.json()["action"][0]


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "action"),
        ({"action": None}, "action"),
        ({"action": ["pause"]}, "action"),
        ({"action": "pause", "reason": "x" * 1001}, "reason"),
        ({"action": "pause", "reason": {"why": 1}}, "reason"),
        ({"action": "pause", "because": "x"}, "because"),
    ],
)
def test_malformed_action_bodies_name_the_field(client, interval_job, body, field):
    response = client.post(action_url(interval_job.pk), body, format="json")

    assert response.status_code == 400
    assert field in response.json()


def test_malformed_json_action_body_is_a_400(client, interval_job):
    response = client.post(action_url(interval_job.pk), "{action: pause}", content_type="application/json")

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


@pytest.mark.parametrize("action", ["trigger", "pause", "resume", "enable", "disable"])
def test_actions_on_a_deleted_job_are_404(client, interval_job, action):
    job_delete(interval_job)

    assert act(client, interval_job, action).status_code == 404


def test_actions_on_a_missing_job_are_404(client):
    response = client.post(action_url(424242), {"action": "trigger"}, format="json")

    assert response.status_code == 404


@pytest.mark.parametrize("suffix", ["", "/"])
def test_trailing_slash_is_optional(client, interval_job, suffix):
    response = client.post(action_url(interval_job.pk) + suffix, {"action": "pause"}, format="json")

    assert response.status_code == 200


def test_get_on_the_action_url_is_405(client, interval_job):
    assert client.get(action_url(interval_job.pk)).status_code == 405

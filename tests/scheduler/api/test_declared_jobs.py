"""Jobs declared in code, through the API: shown as such, declared fields read-only, actions available."""

import pytest

from scheduler.registry import cron, interval
from scheduler.services.declarations import jobs_sync
from scheduler.services.jobs import CODE_OWNED_FIELDS
from tests.factories import DECLARED_TASK, IntervalJobFactory, declared_jobs
from tests.scheduler.api.conftest import action_url, client_for, job_url, user_with

DEFINED = "defined in code (tests.factories.declared_task)"


@pytest.fixture
def declared(db, clean_registry):
    return declared_jobs(cron("0 2 * * *", name="nightly", timezone="Europe/Paris", kwargs={"full": True}))["nightly"]


def test_a_declared_job_says_it_is_defined_in_code(client, declared):
    body = client.get(job_url(declared.pk)).json()
    assert body["managedBy"] == DEFINED
    assert "cronExpression" in body["fieldsDefinedInCode"] and "taskFunctionId" in body["fieldsDefinedInCode"]
    assert len(body["fieldsDefinedInCode"]) == len(CODE_OWNED_FIELDS)
    assert "historyLimit" not in body["fieldsDefinedInCode"]
    listed = {job["name"]: job for job in client.get("/api/v1/scheduler/jobs").json()["results"]}
    assert listed["nightly"]["managedBy"] == DEFINED


def test_a_hand_made_job_has_no_manager(client, db):
    body = client.get(job_url(IntervalJobFactory().pk)).json()
    assert (body["managedBy"], body["fieldsDefinedInCode"]) == (None, [])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cronExpression": "0 3 * * *"}, "cronExpression"),
        ({"timezone": "UTC"}, "timezone"),
        ({"kwargs": {}}, "kwargs"),
        ({"args": [1]}, "args"),
        ({"name": "renamed"}, "name"),
        ({"maxInstances": 3}, "maxInstances"),
        ({"jobTypeId": 1, "intervalMinutes": 5}, "jobTypeId"),
    ],
)
def test_changing_a_declared_field_is_a_400_saying_the_job_is_defined_in_code(client, declared, change, field):
    response = client.patch(job_url(declared.pk), change, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert response.json()[field][0].startswith(f"This job is {DEFINED}:")
    declared.refresh_from_db()
    assert (declared.cron_expression, declared.name, declared.kwargs) == ("0 2 * * *", "nightly", {"full": True})


def test_another_task_function_is_refused_under_its_api_name(client, declared, noop):
    response = client.patch(job_url(declared.pk), {"taskFunctionId": noop.pk}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["taskFunctionId"]


def test_what_code_does_not_declare_stays_editable_and_a_get_body_can_be_sent_back(client, declared):
    assert client.patch(job_url(declared.pk), {"historyLimit": 50}, format="json").status_code == 200
    # The run policies are the operators' too.
    policies = {"overlapPolicy": "buffer_one", "maxRetries": 2, "retryBackoff": 10, "timeout": 60}
    response = client.patch(job_url(declared.pk), policies, format="json")
    assert response.status_code == 200, response.content
    assert {key: response.json()[key] for key in policies} == policies
    body = client.get(job_url(declared.pk)).json()
    body["historyLimit"] = 20
    response = client.put(job_url(declared.pk), body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["historyLimit"] == 20


def test_a_declared_job_cannot_be_deleted_here(client, declared):
    response = client.delete(job_url(declared.pk))
    assert response.status_code == 400
    assert "remove its declaration there" in response.json()["managedBy"][0]
    declared.refresh_from_db()
    assert declared.is_active


def test_actions_stay_available_on_a_declared_job(client, declared):
    for action, expected in (("pause", 200), ("resume", 200), ("disable", 200), ("enable", 200), ("trigger", 202)):
        response = client.post(action_url(declared.pk), {"action": action}, format="json")
        assert response.status_code == expected, (action, response.content)
    declared.refresh_from_db()
    assert declared.is_enabled and not declared.is_paused


def test_an_operator_with_change_permission_pauses_a_declared_job(declared):
    client = client_for(user_with("view_scheduledjob", "change_scheduledjob"))
    response = client.post(action_url(declared.pk), {"action": "pause", "reason": "vendor outage"}, format="json")
    assert response.status_code == 200
    assert response.json()["isPaused"] and response.json()["managedBy"] == DEFINED


def test_once_its_declaration_is_gone_the_job_is_editable(client, declared, clean_registry):
    clean_registry.task_function(DECLARED_TASK, schedules=[interval(minutes=1, name="other")])(
        clean_registry.get(DECLARED_TASK).func
    )
    jobs_sync()
    body = client.get(job_url(declared.pk)).json()
    assert body["managedBy"] == "declaration removed from code (was tests.factories.declared_task)"
    assert body["fieldsDefinedInCode"] == [] and body["isEnabled"] is False
    assert client.patch(job_url(declared.pk), {"cronExpression": "0 4 * * *"}, format="json").status_code == 200

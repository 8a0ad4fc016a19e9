"""GET /jobs/{id}/audit, and the source each entry point gives the audit trail (API, admin, dashboard)."""

from scheduler.enums import ChangeSource
from scheduler.models import JobAuditEntry
from scheduler.services.jobs import job_delete
from tests.factories import IntervalJobFactory
from tests.scheduler.api.conftest import JOBS, action_url, client_for, job_url, user_with


def audit_url(job_id):
    return f"{JOBS}/{job_id}/audit"


def test_changes_through_the_api_are_listed_newest_first_with_fields_in_camel_case(client, superuser, interval_body):
    created = client.post(JOBS, interval_body, format="json").json()
    client.patch(job_url(created["id"]), {"intervalMinutes": 10, "kwargs": {"my_key": 1}}, format="json")
    client.post(action_url(created["id"]), {"action": "pause", "reason": "disk swap"}, format="json")
    run = client.post(action_url(created["id"]), {"action": "trigger"}, format="json").json()

    response = client.get(audit_url(created["id"]))
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    trigger, pause, edit, create = body["results"]
    assert [e["action"] for e in body["results"]] == ["trigger", "pause", "edit", "create"]
    assert {e["source"] for e in body["results"]} == {"api"}
    assert {e["user"] for e in body["results"]} == {superuser.username}
    assert trigger["details"] == {"executionId": run["id"]}
    assert pause["details"] == {"reason": "disk swap"}
    assert pause["changes"]["isPaused"] == {"before": False, "after": True}
    assert edit["changes"]["intervalMinutes"] == {"before": 5, "after": 10}
    # The job's own data is passed through as it was stored.
    assert edit["changes"]["kwargs"] == {"before": {}, "after": {"my_key": 1}}
    assert create["changes"]["name"]["after"] == interval_body["name"]
    assert set(pause) == {"id", "action", "at", "user", "actor", "source", "changes", "details"}


def test_a_deleted_job_keeps_its_trail_and_a_missing_one_is_404(client, superuser):
    job = IntervalJobFactory()
    job_delete(job, user=superuser)
    assert [e["action"] for e in client.get(audit_url(job.pk)).json()["results"]] == ["delete", "create"]
    assert client.get(audit_url(job.pk + 1000)).status_code == 404
    assert client.get(audit_url("abc")).status_code == 404


def test_reading_the_trail_needs_the_read_permission(db):
    job = IntervalJobFactory()
    assert client_for(user_with("view_scheduledjob")).get(audit_url(job.pk)).status_code == 200
    assert client_for(user_with("view_taskfunction")).get(audit_url(job.pk)).status_code == 403


def test_the_admin_and_the_dashboard_are_named_as_sources(client, admin_client):
    job = IntervalJobFactory()
    admin_client.post(
        "/admin/scheduler/scheduledjob/",
        {"action": "pause_jobs", "_selected_action": [job.pk]},
    )
    admin_client.post(f"/scheduler/jobs/{job.pk}/resume/")
    sources = list(JobAuditEntry.objects.of_job(job.pk).values_list("action", "source"))
    assert sources == [("resume", ChangeSource.DASHBOARD), ("pause", ChangeSource.ADMIN), ("create", ChangeSource.CODE)]
    page = admin_client.get(f"/admin/scheduler/scheduledjob/{job.pk}/change/").content.decode()
    assert 'id="audit-trail"' in page and "paused in the admin by" in page
    dashboard = admin_client.get(f"/scheduler/jobs/{job.pk}/").content.decode()
    assert 'data-action="resume"' in dashboard and "dashboard" in dashboard

"""The dashboard pages: login and permissions, what they show, and actions through the services."""

import itertools
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from scheduler.models import ExecutionStatus, JobExecution, ScheduledJob, SchedulerInstance
from scheduler.services.executions import execution_fail, execution_finish, execution_start
from scheduler.services.jobs import job_delete, job_disable, job_pause
from tests.factories import CronJobFactory, ExecutionFactory, IntervalJobFactory, UserFactory

DASHBOARD = "/scheduler/"
_distinct = itertools.count(1)  # keeps scheduled times unique per job (a database constraint)


def user_with(*codenames):
    user = UserFactory()
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="scheduler", codename__in=codenames))
    return user


@pytest.fixture
def viewer(client, db):
    client.force_login(user_with("view_scheduledjob"))
    return client


@pytest.fixture
def operator(client, db):
    client.force_login(user_with("view_scheduledjob", "change_scheduledjob", "trigger_scheduledjob"))
    return client


def action_url(job, action):
    return f"/scheduler/jobs/{job.pk}/{action}/"


def finished_run(job, *, failed=False, seconds=2.0, error="disk full"):
    execution = ExecutionFactory(
        job=job, scheduled_time=timezone.now() - timedelta(seconds=seconds, microseconds=next(_distinct))
    )
    execution_start(execution, instance_id="host-a")
    JobExecution.objects.filter(pk=execution.pk).update(started_at=timezone.now() - timedelta(seconds=seconds))
    execution.refresh_from_db()
    if failed:
        return execution_fail(execution, error=error, traceback="Traceback (most recent call last):\n  boom")
    return execution_finish(execution)


# --- access ------------------------------------------------------------------------------------


def test_login_required(client, db):
    response = client.get(DASHBOARD)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/scheduler/")


def test_view_permission_required(client, db):
    client.force_login(UserFactory())
    assert client.get(DASHBOARD).status_code == 403


def test_superuser_sees_every_button(client, db):
    job = IntervalJobFactory(name="backup")
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    page = client.get(DASHBOARD).content.decode()
    for action in ("trigger", "pause", "disable"):
        assert f'data-testid="{action}-{job.pk}"' in page


def test_buttons_follow_permissions(viewer, db):
    job = IntervalJobFactory()
    page = viewer.get(DASHBOARD).content.decode()
    assert f'data-testid="trigger-{job.pk}"' not in page
    assert f'data-testid="pause-{job.pk}"' not in page


# --- what the dashboard shows --------------------------------------------------------------


def test_no_scheduler_warning_and_instances(viewer, db):
    page = viewer.get(DASHBOARD).content.decode()
    assert "No scheduler is running." in page
    now = timezone.now()
    SchedulerInstance.objects.create(
        instance_id="host-a-1", hostname="host-a", pid=7, started_at=now, last_heartbeat=now - timedelta(seconds=4)
    )
    page = viewer.get(DASHBOARD).content.decode()
    assert "No scheduler is running." not in page
    assert "host-a-1" in page
    assert re.search(r"<td>([4-9]|1[0-9]) s ago</td>", page)  # 4 s, plus however slow the test is


def test_jobs_table(viewer, db):
    interval = IntervalJobFactory(name="every five", interval_minutes=5)
    cron = CronJobFactory(name="nightly", cron_expression="0 2 * * 0", timezone="Europe/Paris")
    paused = job_pause(IntervalJobFactory(name="paused one"), reason="maintenance")
    disabled = job_disable(IntervalJobFactory(name="disabled one"))
    gone = IntervalJobFactory(name="deleted one")
    job_delete(gone)
    finished_run(interval, failed=True)
    page = viewer.get(DASHBOARD).content.decode()
    assert "every 5 minutes" in page
    assert "At 02:00, only on Sunday (Europe/Paris)" in page
    assert f'<tr data-job="{paused.pk}">' in page and "st-paused" in page
    assert f'<tr data-job="{disabled.pk}">' in page and "st-disabled" in page
    assert "deleted one" not in page
    row = page.split(f'<tr data-job="{interval.pk}">')[1].split("</tr>")[0]
    assert 'data-status="failed"' in row
    assert cron.name in page


def test_recent_executions_make_failures_easy_to_find(viewer, db):
    job = IntervalJobFactory(name="flaky")
    ok = finished_run(job)
    bad = finished_run(job, failed=True, error="upstream returned 502")
    page = viewer.get(DASHBOARD).content.decode()
    assert f'<tr class="row-failed" data-execution="{bad.pk}">' in page
    assert "upstream returned 502" in page and "Traceback (most recent call last)" in page
    assert 'href="?failures=1"' in page and "Failures only (1)" in page

    failures = viewer.get(DASHBOARD + "?failures=1").content.decode()
    assert f'data-execution="{bad.pk}"' in failures
    assert f'data-execution="{ok.pk}"' not in failures


def test_charts_drawn_from_the_database(viewer, db):
    job = IntervalJobFactory()
    finished_run(job, seconds=3)
    finished_run(job, failed=True, seconds=1)
    long_ago = timezone.now() - timedelta(hours=30)
    ExecutionFactory(job=job, status=ExecutionStatus.SUCCESS, started_at=long_ago, finished_at=long_ago, duration_ms=5)
    response = viewer.get(DASHBOARD)
    runs_chart = response.context["runs_chart"]
    assert runs_chart["total"] == 2  # the run that ended 30 hours ago is outside the chart
    assert {item["status"]: item["count"] for item in runs_chart["legend"]}["failed"] == 1
    assert len(runs_chart["bars"]) == 24
    assert sum(b["count"] for b in response.context["durations_chart"]["bars"]) == 2
    page = response.content.decode()
    assert '<svg viewBox="0 0 720 180" role="img" aria-label="Runs per hour' in page
    assert 'class="fill-failed"' in page and 'class="fill-avg"' in page


def test_charts_count_runs_as_they_ended_even_once_deleted(viewer, db):
    """The charts read the per-minute summary, which counts runs when they end: retention and
    history limits deleting the rows later do not rewrite the past hours."""
    job = IntervalJobFactory()
    finished_run(job, seconds=2)
    finished_run(job, failed=True, seconds=1)
    JobExecution.objects.filter(job=job).delete()
    response = viewer.get(DASHBOARD)
    legend = {item["status"]: item["count"] for item in response.context["runs_chart"]["legend"]}
    assert legend["success"] == 1 and legend["failed"] == 1
    durations = [bar for bar in response.context["durations_chart"]["bars"] if bar["count"]]
    assert len(durations) == 1 and durations[0]["count"] == 2 and durations[0]["max_ms"] >= 2000


def test_status_counts(viewer, db):
    job = IntervalJobFactory()
    finished_run(job, failed=True)
    ExecutionFactory(job=job, status=ExecutionStatus.PENDING, trigger="manual")
    status = viewer.get(DASHBOARD).context["status"]
    assert status.executions.failed == 1 and status.executions.pending == 1
    assert status.jobs.total == 2  # with the built-in cleanup job


# --- the job page ---------------------------------------------------------------------------


def test_job_page_with_history_and_filter(viewer, db):
    job = CronJobFactory(name="report", cron_expression="*/10 * * * *")
    ok = finished_run(job)
    bad = finished_run(job, failed=True)
    response = viewer.get(f"/scheduler/jobs/{job.pk}/")
    page = response.content.decode()
    assert "<h1>report" in page and "Every 10 minutes" in page
    assert page.count('<span class="time">') == 5  # the next five fire times
    assert f'data-execution="{ok.pk}"' in page and f'data-execution="{bad.pk}"' in page
    assert response.context["durations_chart"]["runs"] == 2

    failed_only = viewer.get(f"/scheduler/jobs/{job.pk}/?status=failed").content.decode()
    assert f'data-execution="{bad.pk}"' in failed_only and f'data-execution="{ok.pk}"' not in failed_only
    # A status that does not exist shows everything rather than failing.
    assert viewer.get(f"/scheduler/jobs/{job.pk}/?status=bogus").status_code == 200


def test_job_page_of_deleted_job_keeps_history(operator, db):
    job = IntervalJobFactory(name="retired")
    run = finished_run(job)
    job_delete(job)
    page = operator.get(f"/scheduler/jobs/{job.pk}/").content.decode()
    assert "This job was deleted" in page and f'data-execution="{run.pk}"' in page
    assert f'data-testid="trigger-{job.pk}"' not in page


def test_job_page_404(viewer, db):
    assert viewer.get("/scheduler/jobs/987654/").status_code == 404


def test_history_is_paginated(viewer, db):
    job = IntervalJobFactory()
    for i in range(30):
        ExecutionFactory(job=job, scheduled_time=timezone.now() - timedelta(minutes=i))
    response = viewer.get(f"/scheduler/jobs/{job.pk}/")
    assert len(response.context["history"]) == 25
    assert len(viewer.get(f"/scheduler/jobs/{job.pk}/?page=2").context["history"]) == 5


# --- actions --------------------------------------------------------------------------------


def test_trigger_records_a_pending_manual_run(operator, db):
    job = IntervalJobFactory(name="on demand")
    response = operator.post(action_url(job, "trigger"), {"next": DASHBOARD})
    assert response.status_code == 302 and response["Location"] == DASHBOARD
    execution = JobExecution.objects.get(job=job)
    assert (execution.status, execution.trigger) == ("pending", "manual")
    assert execution.triggered_by is not None
    page = operator.get(DASHBOARD).content.decode()
    assert f"execution #{execution.pk} is pending" in page


def test_actions_as_json_for_the_page_script(operator, db):
    job = IntervalJobFactory(name="toggled")
    steps = [
        ("pause", {"is_paused": True}),
        ("resume", {"is_paused": False}),
        ("disable", {"is_enabled": False}),
        ("enable", {"is_enabled": True}),
    ]
    for action, expected in steps:
        response = operator.post(action_url(job, action), {"reason": "night work"}, HTTP_ACCEPT="application/json")
        assert response.status_code == 200, response.content
        assert response.json()["ok"] is True
        job.refresh_from_db()
        for field, value in expected.items():
            assert getattr(job, field) == value, (action, field)
    job_pause(job, reason="")
    operator.post(action_url(job, "resume"))
    operator.post(action_url(job, "pause"), {"reason": "night work"})
    job.refresh_from_db()
    assert job.pause_reason == "night work"


def test_trigger_needs_the_trigger_permission(client, db):
    job = IntervalJobFactory()
    client.force_login(user_with("view_scheduledjob", "change_scheduledjob"))
    assert client.post(action_url(job, "trigger")).status_code == 403
    response = client.post(action_url(job, "trigger"), HTTP_ACCEPT="application/json")
    assert response.status_code == 403
    assert response.json() == {"ok": False, "message": "You do not have permission to trigger jobs."}
    assert not JobExecution.objects.exists()
    # change permission is enough for the rest.
    assert client.post(action_url(job, "pause")).status_code == 302


def test_change_actions_need_the_change_permission(client, db):
    job = IntervalJobFactory()
    client.force_login(user_with("view_scheduledjob", "trigger_scheduledjob"))
    for action in ("pause", "resume", "enable", "disable"):
        assert client.post(action_url(job, action)).status_code == 403
    job.refresh_from_db()
    assert job.is_enabled and not job.is_paused


def test_actions_refuse_get_unknown_actions_and_anonymous(client, operator, db):
    job = IntervalJobFactory()
    assert operator.get(action_url(job, "trigger")).status_code == 405
    assert operator.post(action_url(job, "explode")).status_code == 404
    assert operator.post("/scheduler/jobs/987654/trigger/").status_code == 404
    operator.logout()
    assert client.post(action_url(job, "trigger")).status_code == 302
    assert not JobExecution.objects.exists()


def test_service_refusal_is_shown_not_raised(operator, db):
    job = IntervalJobFactory()
    job.task_function.is_active = False
    job.task_function.save()
    response = operator.post(action_url(job, "trigger"), HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert "inactive" in response.json()["message"]


def test_next_must_stay_on_this_site(operator, db):
    job = IntervalJobFactory()
    response = operator.post(action_url(job, "pause"), {"next": "https://evil.example/"})
    assert response["Location"] == f"/scheduler/jobs/{job.pk}/"


def test_csrf_is_enforced(db):
    from django.test import Client

    job = IntervalJobFactory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(is_superuser=True))
    assert client.post(action_url(job, "trigger")).status_code == 403


def test_static_files_are_served_by_the_project(viewer, db):
    page = viewer.get(DASHBOARD).content.decode()
    assert "/static/scheduler/dashboard.js" in page and "/static/scheduler/dashboard.css" in page
    assert "http://" not in page.split("<body")[0] and "https://" not in page.split("<body")[0]


def test_a_declared_job_shows_where_it_is_defined_and_takes_actions(operator, clean_registry):
    from scheduler.registry import interval
    from tests.factories import declared_jobs

    job = declared_jobs(interval(minutes=5, name="declared poll"))["declared poll"]
    defined = "defined in code (tests.factories.declared_task)"
    assert defined in operator.get(DASHBOARD).content.decode()
    page = operator.get(f"/scheduler/jobs/{job.pk}/").content.decode()
    assert defined in page and "schedule and arguments change in code" in page
    assert "Open in the admin" not in page or "Edit in the admin" not in page
    response = operator.post(action_url(job, "pause"), {"reason": "by the dashboard"})
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.is_paused and job.pause_reason == "by the dashboard"


def test_jobs_table_pages_through_every_job_once(viewer, db):
    for n in range(55):
        IntervalJobFactory(name=f"job {n:02}")
    first = viewer.get(DASHBOARD).context["jobs"]
    second = viewer.get(DASHBOARD + "?page=2").context["jobs"]
    assert first.paginator.count == 56  # with the built-in cleanup job, from the job tally
    names = [job.name for job in first] + [job.name for job in second]
    assert len(first) == 50 and len(second) == 6
    assert sorted(names) == sorted(ScheduledJob.objects.values_list("name", flat=True))
    assert names == sorted(names, key=lambda name: name)  # by name, as the table says


def test_refresh_reads_as_many_rows_whatever_the_history(viewer, db):
    """As many queries with 3 runs or 60 in the history: the counts and charts read the
    summaries, the lists one page each (the fleet benchmark measures the time)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    job = IntervalJobFactory()

    def refresh():
        with CaptureQueriesContext(connection) as captured:
            viewer.get(DASHBOARD, HTTP_X_REQUESTED_WITH="fetch")
        return len(captured)

    for _ in range(3):
        finished_run(job)
    few = refresh()
    for _ in range(57):
        finished_run(job)
    assert refresh() == few

"""The admin: lists, edit form, live preview, actions and soft delete, all through the services."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from scheduler.models import ExecutionStatus, JobExecution, JobType, ScheduledJob, TaskFunction
from tests.factories import CronJobFactory, ExecutionFactory, IntervalJobFactory, UserFactory

CHANGELIST = "admin:scheduler_scheduledjob_changelist"


def _form_data(**overrides):
    data = {
        "name": "nightly report",
        "description": "",
        "task_function": TaskFunction.objects.get(name="tasks.functions.noop").pk,
        "job_type": JobType.CRON,
        "cron_expression": "0 2 * * 0",
        "timezone": "Europe/Paris",
        "args": "[]",
        "kwargs": "{}",
        "priority": 0,
        "max_instances": 1,
        "misfire_grace_time": 60,
        "coalesce": "on",
        "overlap_policy": "skip",
        "max_retries": 0,
        "retry_backoff": 10,
        "is_enabled": "on",
        "executions-TOTAL_FORMS": "0",
        "executions-INITIAL_FORMS": "0",
        "executions-MIN_NUM_FORMS": "0",
        "executions-MAX_NUM_FORMS": "0",
    }
    data.update(overrides)
    return data


def test_changelist_shows_schedule_in_words_and_last_status(admin_client):
    job = IntervalJobFactory(name="every five", interval_minutes=5)
    ExecutionFactory(job=job, status=ExecutionStatus.FAILED)
    CronJobFactory(name="sunday two", cron_expression="0 2 * * 0")
    response = admin_client.get(reverse(CHANGELIST))
    content = response.content.decode()
    assert response.status_code == 200
    assert "every 5 minutes" in content
    assert "At 02:00, only on Sunday" in content
    assert "failed" in content


def test_changelist_hides_deleted_jobs(admin_client):
    job = IntervalJobFactory(name="gone soon")
    admin_client.post(reverse("admin:scheduler_scheduledjob_delete", args=[job.pk]), {"post": "yes"})
    job.refresh_from_db()
    assert job.is_active is False
    admin_client.get(reverse(CHANGELIST))  # shows (and consumes) the "deleted" message
    assert "gone soon" not in admin_client.get(reverse(CHANGELIST)).content.decode()


def test_add_form_creates_job_through_service(admin_client):
    response = admin_client.post(reverse("admin:scheduler_scheduledjob_add"), _form_data())
    assert response.status_code == 302, response.content.decode()[:3000]
    job = ScheduledJob.objects.get(name="nightly report")
    assert job.next_run_time is not None
    assert job.created_by is not None


def test_add_form_shows_service_errors_on_fields(admin_client):
    response = admin_client.post(
        reverse("admin:scheduler_scheduledjob_add"),
        _form_data(cron_expression="61 * * * *", timezone="Mars/Olympus"),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "timezone" in errors
    assert not ScheduledJob.objects.filter(name="nightly report").exists()


def test_add_form_ignores_hidden_interval_fields_for_cron_job(admin_client):
    response = admin_client.post(reverse("admin:scheduler_scheduledjob_add"), _form_data(interval_minutes="5"))
    assert response.status_code == 302
    assert ScheduledJob.objects.get(name="nightly report").interval_minutes is None


def test_change_page_shows_next_five_fire_times_and_recent_executions(admin_client):
    job = CronJobFactory(cron_expression="0 2 * * 0")
    for _ in range(25):
        ExecutionFactory(job=job, trigger="manual")
    response = admin_client.get(reverse("admin:scheduler_scheduledjob_change", args=[job.pk]))
    content = response.content.decode()
    assert response.status_code == 200
    assert content.count("Sun 20") >= 5
    assert len(re.findall(r"/jobexecution/\d+/change/", content)) == 20


def test_preview_view_returns_fire_times_or_field_errors(admin_client):
    url = reverse("admin:scheduler_scheduledjob_preview")
    ok = admin_client.get(url, {"job_type": "2", "cron_expression": "*/15 * * * *", "timezone": "UTC"})
    assert ok.status_code == 200
    assert len(ok.json()["fireTimes"]) == 5
    bad = admin_client.get(url, {"job_type": "2", "cron_expression": "* * *", "timezone": "UTC"})
    assert bad.status_code == 400
    assert "cron_expression" in bad.json()["errors"]


@pytest.mark.parametrize(
    ("action", "check"),
    [
        ("pause_jobs", lambda job: job.is_paused),
        ("disable_jobs", lambda job: not job.is_enabled and job.next_run_time is None),
    ],
)
def test_bulk_actions_change_jobs(admin_client, action, check):
    jobs = [IntervalJobFactory(), IntervalJobFactory()]
    admin_client.post(reverse(CHANGELIST), {"action": action, "_selected_action": [j.pk for j in jobs]})
    for job in jobs:
        job.refresh_from_db()
        assert check(job)


def test_resume_and_enable_actions(admin_client):
    job = IntervalJobFactory()
    admin_client.post(reverse(CHANGELIST), {"action": "pause_jobs", "_selected_action": [job.pk]})
    admin_client.post(reverse(CHANGELIST), {"action": "disable_jobs", "_selected_action": [job.pk]})
    admin_client.post(reverse(CHANGELIST), {"action": "resume_jobs", "_selected_action": [job.pk]})
    admin_client.post(reverse(CHANGELIST), {"action": "enable_jobs", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert job.is_enabled and not job.is_paused and job.next_run_time is not None


def test_trigger_action_records_manual_run_by_user(admin_client, admin_user):
    job = IntervalJobFactory()
    admin_client.post(reverse(CHANGELIST), {"action": "trigger_jobs", "_selected_action": [job.pk]})
    execution = JobExecution.objects.get(job=job)
    assert execution.trigger == "manual"
    assert execution.status == ExecutionStatus.PENDING
    assert execution.triggered_by == admin_user


def test_trigger_action_needs_trigger_permission(db, client):
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(
        Permission.objects.get(codename="view_scheduledjob"),
        Permission.objects.get(codename="change_scheduledjob"),
    )
    client.force_login(staff)
    job = IntervalJobFactory()
    response = client.get(reverse(CHANGELIST))
    assert "trigger_jobs" not in response.content.decode()
    assert "pause_jobs" in response.content.decode()
    client.post(reverse(CHANGELIST), {"action": "trigger_jobs", "_selected_action": [job.pk]})
    assert not JobExecution.objects.filter(job=job).exists()


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:scheduler_jobexecution_changelist",
        "admin:scheduler_joblease_changelist",
        "admin:scheduler_schedulerinstance_changelist",
        "admin:scheduler_taskfunction_changelist",
    ],
)
def test_read_only_pages_render(admin_client, url_name):
    response = admin_client.get(reverse(url_name))
    assert response.status_code == 200
    assert "Add " not in response.content.decode().split("<h1>")[1][:200]


def test_execution_page_shows_traceback(admin_client):
    execution = ExecutionFactory(status=ExecutionStatus.FAILED, traceback="Traceback: boom happened")
    response = admin_client.get(reverse("admin:scheduler_jobexecution_change", args=[execution.pk]))
    assert "Traceback: boom happened" in response.content.decode()


# --- jobs declared in code ---------------------------------------------------------------------------


@pytest.fixture
def declared(db, clean_registry):
    from scheduler.registry import cron
    from tests.factories import declared_jobs

    return declared_jobs(cron("0 2 * * *", name="nightly", timezone="Europe/Paris", args=[1]))["nightly"]


def _input(content: str, name: str) -> str:
    match = re.search(rf"<(?:input|select|textarea)[^>]*name=\"{name}\"[^>]*>", content)
    assert match, name
    return match.group(0)


def test_change_page_of_a_declared_job_shows_its_declared_fields_disabled(admin_client, declared):
    content = admin_client.get(reverse("admin:scheduler_scheduledjob_change", args=[declared.pk])).content.decode()
    assert "defined in code (tests.factories.declared_task)" in content
    for name in ("name", "cron_expression", "timezone", "args", "kwargs", "task_function", "job_type", "priority"):
        assert " disabled" in _input(content, name), name
    assert " disabled" not in _input(content, "history_limit")
    assert " disabled" not in _input(content, "is_enabled")


def test_posting_a_declared_job_keeps_its_declared_fields_and_saves_the_rest(admin_client, declared):
    data = _form_data(name="renamed", cron_expression="0 5 * * *", args="[2]", history_limit="7")
    response = admin_client.post(reverse("admin:scheduler_scheduledjob_change", args=[declared.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    declared.refresh_from_db()
    assert (declared.name, declared.cron_expression, declared.args) == ("nightly", "0 2 * * *", [1])
    assert declared.history_limit == 7


def test_a_declared_job_cannot_be_deleted_in_the_admin(admin_client, declared):
    single = admin_client.get(reverse("admin:scheduler_scheduledjob_delete", args=[declared.pk]))
    assert single.status_code == 403
    other = IntervalJobFactory(name="made by hand")
    bulk = admin_client.post(
        reverse(CHANGELIST), {"action": "delete_selected", "_selected_action": [declared.pk, other.pk], "post": "yes"}
    )
    assert "remove its declaration there" in bulk.content.decode()
    declared.refresh_from_db()
    other.refresh_from_db()
    assert declared.is_active and other.is_active  # the admin refuses the whole deletion


def test_actions_work_on_a_declared_job_and_the_list_says_where_it_is_defined(admin_client, declared):
    admin_client.post(reverse(CHANGELIST), {"action": "pause_jobs", "_selected_action": [declared.pk]})
    admin_client.post(reverse(CHANGELIST), {"action": "trigger_jobs", "_selected_action": [declared.pk]})
    declared.refresh_from_db()
    assert declared.is_paused and JobExecution.objects.filter(job=declared, trigger="manual").exists()
    IntervalJobFactory(name="made by hand")
    content = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "defined in code (tests.factories.declared_task)" in content
    assert "by hand (admin, API or import)" in content


# --- change lists at fleet scale: the right rows, without reading the whole table ---------------

EXECUTIONS = "admin:scheduler_jobexecution_changelist"


def _listed_executions(response) -> list[int]:
    return [
        int(pk) for pk in re.findall(r'<th class="field-id"><a href="[^"]*?/(\d+)/change/', response.content.decode())
    ]


def test_execution_list_newest_first_with_a_count_and_no_second_one(admin_client):
    job = IntervalJobFactory()
    runs = [ExecutionFactory(job=job, status=ExecutionStatus.SUCCESS) for _ in range(3)]
    response = admin_client.get(reverse(EXECUTIONS))
    assert _listed_executions(response) == [r.pk for r in reversed(runs)]
    assert response.context["cl"].result_count == 3
    assert response.context["cl"].full_result_count is None  # show_full_result_count = False


def test_execution_list_filters_by_job_status_and_date(admin_client):
    job, other = IntervalJobFactory(name="wanted"), IntervalJobFactory()
    failed = ExecutionFactory(job=job, status=ExecutionStatus.FAILED)
    ok = ExecutionFactory(job=job, status=ExecutionStatus.SUCCESS)
    elsewhere = ExecutionFactory(job=other, status=ExecutionStatus.FAILED)
    of_job = admin_client.get(reverse(EXECUTIONS), {"job": job.pk})
    assert sorted(_listed_executions(of_job)) == sorted([failed.pk, ok.pk])
    assert "wanted" in of_job.content.decode()  # the filter names the job it shows
    failures = admin_client.get(reverse(EXECUTIONS), {"status__exact": "failed"})
    assert sorted(_listed_executions(failures)) == sorted([failed.pk, elsewhere.pk])
    JobExecution.objects.filter(pk=ok.pk).update(created_at=ok.created_at.replace(year=2020))
    midnight = failed.created_at.replace(hour=0, minute=0, second=0, microsecond=0)
    today = admin_client.get(reverse(EXECUTIONS), {"created_at__gte": str(midnight)})
    assert ok.pk not in _listed_executions(today) and failed.pk in _listed_executions(today)
    assert _listed_executions(admin_client.get(reverse(EXECUTIONS), {"job": "nonsense"})) == []


def test_execution_search_by_id_or_exact_job_name(admin_client):
    job = IntervalJobFactory(name="nightly export")
    mine = ExecutionFactory(job=job)
    other = ExecutionFactory()
    assert _listed_executions(admin_client.get(reverse(EXECUTIONS), {"q": str(other.pk)})) == [other.pk]
    assert _listed_executions(admin_client.get(reverse(EXECUTIONS), {"q": "nightly export"})) == [mine.pk]
    assert _listed_executions(admin_client.get(reverse(EXECUTIONS), {"q": "nightly"})) == []


def test_job_list_count_comes_from_the_tally_when_nothing_narrows_it(admin_client):
    for n in range(3):
        IntervalJobFactory(name=f"job {n}")
    response = admin_client.get(reverse(CHANGELIST))
    # The three and the built-in cleanup job; the tally, not a count of the table.
    assert response.context["cl"].result_count == 4
    assert response.context["cl"].paginator.known_count == 4
    searched = admin_client.get(reverse(CHANGELIST), {"q": "job 1"})
    assert searched.context["cl"].result_count == 1
    assert searched.context["cl"].paginator.known_count is None


def test_pages_deeper_than_the_limit_are_not_offered(admin_client, monkeypatch):
    from scheduler import admin as scheduler_admin

    monkeypatch.setattr(scheduler_admin, "MAX_PAGE_DEPTH", 200)
    job = IntervalJobFactory()
    for _ in range(3):
        JobExecution.objects.bulk_create(
            JobExecution(job=job, status="success", trigger="manual", scheduled_time=job.created_at) for _ in range(100)
        )
    response = admin_client.get(reverse(EXECUTIONS), {"p": 2})
    assert response.status_code == 200 and response.context["cl"].paginator.num_pages == 2
    assert admin_client.get(reverse(EXECUTIONS), {"p": 3}).status_code == 302  # the admin's "invalid page"


def test_a_search_that_fits_on_one_page_reads_the_jobs_once(admin_client):
    """A name search scans every job; counting its matches and showing them is one scan, not two."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for n in range(5):
        IntervalJobFactory(name=f"backup {n}")
    IntervalJobFactory(name="report")
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(reverse(CHANGELIST), {"q": "backup"})
    assert response.context["cl"].result_count == 5
    assert len(response.context["cl"].result_list) == 5
    searches = [
        q["sql"]
        for q in captured.captured_queries
        if "LIKE" in q["sql"] and not q["sql"].startswith("EXPLAIN")  # planning reads no rows
    ]
    assert len(searches) == 1, searches

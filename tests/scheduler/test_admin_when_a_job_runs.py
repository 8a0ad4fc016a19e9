"""The admin of when a job runs: date jobs and windows in the job form, the backfill action with its
form page, and calendars edited as one date per line; every write through the services."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from scheduler.enums import ExecutionTrigger
from scheduler.models import Calendar, ExecutionStatus, JobExecution, JobType, ScheduledJob
from scheduler.services.calendars import calendar_save
from tests.factories import CronJobFactory, UserFactory
from tests.scheduler.test_admin import _form_data

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:scheduler_scheduledjob_changelist"


def backfill_post(client, jobs, **fields):
    data = {"action": "backfill_jobs", "_selected_action": [job.pk for job in jobs], **fields}
    return client.post(reverse(CHANGELIST), data)


def messages_after(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


def test_the_backfill_action_asks_for_the_range_on_a_page_of_its_own(admin_client):
    job = CronJobFactory(name="hourly", cron_expression="0 * * * *")
    response = backfill_post(admin_client, [job])
    content = response.content.decode()
    assert response.status_code == 200
    assert 'id="backfill-form"' in content and "hourly" in content
    assert 'name="start"' in content and 'name="end"' in content and 'name="dry_run"' in content
    assert not JobExecution.objects.exists()


def test_the_backfill_action_queues_the_runs_and_says_how_many(admin_client):
    job = CronJobFactory(name="hourly", cron_expression="0 * * * *")
    end = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    fields = {"start": (end - timedelta(hours=3)).isoformat(), "end": end.isoformat(), "overlap_policy": "buffer_all"}
    response = backfill_post(admin_client, [job], apply="Backfill", dry_run="on", **fields)
    assert response.status_code == 302
    assert not JobExecution.objects.exists()
    response = backfill_post(admin_client, [job], apply="Backfill", **fields)
    assert response.status_code == 302
    runs = JobExecution.objects.filter(job=job, trigger=ExecutionTrigger.BACKFILL)
    assert runs.count() == 3 and set(runs.values_list("status", flat=True)) == {ExecutionStatus.WAITING}
    assert messages_after(response) == [
        "hourly: would queue 3 backfilled runs (0 of the range's fire times had already run).",  # the dry run
        "hourly: queued 3 backfilled runs (0 of the range's fire times had already run).",
    ]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"start": "2026-01-01T00:00:00", "end": "2026-01-01T05:00:00Z"}, "has no UTC offset"),
        ({"start": "yesterday", "end": "2026-01-01T05:00:00Z"}, "is not an ISO 8601"),
    ],
)
def test_the_backfill_form_shows_bad_input_on_its_field(admin_client, fields, message):
    job = CronJobFactory(cron_expression="0 * * * *")
    response = backfill_post(admin_client, [job], apply="Backfill", overlap_policy="buffer_all", **fields)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not JobExecution.objects.exists()


def test_a_refused_range_is_reported_per_job(admin_client):
    job = CronJobFactory(name="hourly", cron_expression="0 * * * *")
    fields = {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z", "overlap_policy": "buffer_all"}
    response = backfill_post(admin_client, [job], apply="Backfill", **fields)
    assert messages_after(response) == ["hourly: end must be after start (the range is (start, end]: start excluded)."]


def test_the_backfill_action_needs_the_trigger_permission(client):
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_scheduledjob", "change_scheduledjob"]))
    client.force_login(staff)
    assert "backfill_jobs" not in client.get(reverse(CHANGELIST)).content.decode()
    staff.user_permissions.add(Permission.objects.get(codename="trigger_scheduledjob"))
    assert "backfill_jobs" in client.get(reverse(CHANGELIST)).content.decode()


def test_a_date_job_is_added_in_the_admin_with_its_moment(admin_client):
    run_at = (timezone.now() + timedelta(days=2)).replace(microsecond=0, second=0)
    data = _form_data(
        name="once",
        job_type=JobType.DATE,
        cron_expression="",
        interval_minutes="5",  # left in a hidden field of the other type: not meant
        run_at_0=run_at.strftime("%Y-%m-%d"),
        run_at_1=run_at.strftime("%H:%M:%S"),
        timezone="UTC",
    )
    response = admin_client.post(reverse("admin:scheduler_scheduledjob_add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    job = ScheduledJob.objects.get(name="once")
    assert (job.job_type_id, job.run_at, job.next_run_time, job.interval_minutes) == (3, run_at, run_at, None)
    page = admin_client.get(reverse("admin:scheduler_scheduledjob_change", args=[job.pk])).content.decode()
    assert "once, at" in page


def test_a_window_and_jitter_in_the_job_form_show_in_the_preview(admin_client):
    data = _form_data(
        name="windowed",
        cron_expression="0 9 * * *",
        timezone="UTC",
        start_at_0="2030-01-01",
        start_at_1="00:00:00",
        end_at_0="2030-01-03",
        end_at_1="12:00:00",
        jitter_seconds="120",
    )
    response = admin_client.post(reverse("admin:scheduler_scheduledjob_add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    job = ScheduledJob.objects.get(name="windowed")
    assert job.next_run_time == datetime(2030, 1, 1, 9, tzinfo=UTC)
    page = admin_client.get(reverse("admin:scheduler_scheduledjob_change", args=[job.pk])).content.decode()
    assert page.count("<li>") >= 3 and "(starts " in page
    assert "2030-01-04" not in page  # the window ends on the 3rd


def test_a_bad_window_is_shown_on_its_field(admin_client):
    data = _form_data(start_at_0="2030-01-03", start_at_1="00:00:00", end_at_0="2030-01-01", end_at_1="00:00:00")
    response = admin_client.post(reverse("admin:scheduler_scheduledjob_add"), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["end_at"] == ["endAt must be after startAt."]


def test_a_calendar_is_edited_as_one_date_per_line_and_moves_its_jobs(admin_client):
    response = admin_client.post(
        reverse("admin:scheduler_calendar_add"),
        {"name": "France", "timezone": "Europe/Paris", "dates": "2030-12-25\n2030-01-01\n\n", "description": ""},
    )
    assert response.status_code == 302
    calendar = Calendar.objects.get(name="France")
    assert calendar.dates == ["2030-01-01", "2030-12-25"]
    page = admin_client.get(reverse("admin:scheduler_calendar_change", args=[calendar.pk])).content.decode()
    assert "2030-01-01\n2030-12-25" in page
    job = CronJobFactory(cron_expression="0 12 * * *", start_at=datetime(2030, 1, 1, tzinfo=UTC))
    job.exclude_calendar = calendar
    ScheduledJob.objects.filter(pk=job.pk).update(exclude_calendar=calendar)
    admin_client.post(
        reverse("admin:scheduler_calendar_change", args=[calendar.pk]),
        {"name": "France", "timezone": "Europe/Paris", "dates": "2030-01-01\n2030-01-02", "description": ""},
    )
    job.refresh_from_db()
    assert job.next_run_time == datetime(2030, 1, 3, 12, tzinfo=UTC)


def test_a_calendar_with_a_bad_date_is_refused_on_its_field(admin_client):
    response = admin_client.post(
        reverse("admin:scheduler_calendar_add"),
        {"name": "Bad", "timezone": "UTC", "dates": "2030-01-01\n2030-13-01", "description": ""},
    )
    assert response.status_code == 200
    assert "&#x27;2030-13-01&#x27; is not a date" in response.content.decode()
    assert not Calendar.objects.exists()


def test_a_calendar_in_use_is_not_deleted(admin_client):
    calendar = calendar_save(name="used", timezone="UTC", dates=[])
    CronJobFactory(exclude_calendar=calendar)
    admin_client.post(reverse("admin:scheduler_calendar_delete", args=[calendar.pk]), {"post": "yes"})
    assert Calendar.objects.filter(pk=calendar.pk).exists()


def test_the_live_preview_keeps_to_the_window_and_shows_a_date_jobs_one_run(admin_client):
    url = reverse("admin:scheduler_scheduledjob_preview")
    windowed = admin_client.get(
        url,
        {
            "job_type": "2",
            "cron_expression": "0 9 * * *",
            "timezone": "UTC",
            "start_at_0": "2030-01-01",
            "start_at_1": "00:00:00",
            "end_at_0": "2030-01-02",
            "end_at_1": "12:00:00",
        },
    ).json()
    assert windowed["fireTimes"] == ["Tue 2030-01-01 09:00:00 UTC", "Wed 2030-01-02 09:00:00 UTC"]
    once = admin_client.get(
        url, {"job_type": "3", "timezone": "UTC", "run_at_0": "2030-05-01", "run_at_1": "08:30:00"}
    ).json()
    assert once["fireTimes"] == ["Wed 2030-05-01 08:30:00 UTC"] and once["description"].startswith("once, at")
    missing = admin_client.get(url, {"job_type": "3", "timezone": "UTC"})
    assert missing.status_code == 400 and "run_at" in missing.json()["errors"]
    reversed_window = admin_client.get(
        url,
        {
            "job_type": "1",
            "interval_minutes": "5",
            "timezone": "UTC",
            "start_at_0": "2030-01-02",
            "end_at_0": "2030-01-01",
        },
    )
    assert reversed_window.status_code == 400 and "end_at" in reversed_window.json()["errors"]

"""The dashboard shows when a job runs: window, jitter (planned starts), runs left, calendar, and why
the scheduler disabled a job."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from scheduler.enums import ExecutionTrigger
from scheduler.models import ExecutionStatus, JobExecution, ScheduledJob
from scheduler.services.calendars import calendar_save
from scheduler.services.schedules import job_planned_starts, job_upcoming_fire_times
from tests.factories import CronJobFactory, IntervalJobFactory
from tests.scheduler.views.test_dashboard import DASHBOARD, viewer  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db


def page(client, job):
    response = client.get(f"{DASHBOARD}jobs/{job.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_job_page_shows_the_window_jitter_runs_left_and_calendar(viewer):  # noqa: F811
    calendar = calendar_save(name="France", timezone="Europe/Paris", dates=["2030-12-25"])
    job = CronJobFactory(
        cron_expression="0 9 * * *",
        start_at=datetime(2030, 1, 1, tzinfo=UTC),
        end_at=datetime(2030, 6, 1, tzinfo=UTC),
        jitter_seconds=300,
        max_runs=10,
        exclude_calendar=calendar,
    )
    content = page(viewer, job)
    assert "from 2030-01-01 00:00:00 to 2030-06-01 00:00:00" in content
    assert "jitter up to 300 s" in content and "10 of 10 runs left" in content
    assert "skips the dates of calendar <b>France</b> (Europe/Paris)" in content
    times = job_upcoming_fire_times(job, 5)
    for fire_time, start in zip(times, job_planned_starts(job, times)):
        assert f"{fire_time:%Y-%m-%d %H:%M:%S}" in content
        assert start == fire_time or f"(starts {start:%H:%M:%S})" in content


def test_a_job_the_scheduler_disabled_shows_why_beside_its_state(viewer):  # noqa: F811
    job = IntervalJobFactory(name="ended one")
    ScheduledJob.objects.filter(pk=job.pk).update(
        is_enabled=False, next_run_time=None, disabled_reason="ended: no fire time after its end at 2026-01-09"
    )
    listing = viewer.get(DASHBOARD).content.decode()
    assert f'data-testid="disabled-reason-{job.pk}">ended: no fire time after its end at 2026-01-09' in listing
    assert "none: disabled (ended: no fire time after its end at 2026-01-09)" in page(viewer, job)


def test_runs_show_their_planned_start_and_backfilled_runs_their_trigger(viewer):  # noqa: F811
    job = IntervalJobFactory(jitter_seconds=60)
    now = timezone.now().replace(microsecond=0)
    jittered = JobExecution.objects.create(
        job=job,
        status=ExecutionStatus.SUCCESS,
        trigger=ExecutionTrigger.SCHEDULED,
        scheduled_time=now - timedelta(minutes=5),
        planned_start=now - timedelta(minutes=5) + timedelta(seconds=42),
    )
    JobExecution.objects.create(
        job=job,
        status=ExecutionStatus.WAITING,
        trigger=ExecutionTrigger.BACKFILL,
        scheduled_time=now - timedelta(days=1),
    )
    content = page(viewer, job)
    start = jittered.planned_start.astimezone(timezone.get_current_timezone())
    assert f'data-testid="planned-start-{jittered.pk}"' in content and f"planned start {start:%H:%M:%S}" in content
    assert "<td>backfill" in content

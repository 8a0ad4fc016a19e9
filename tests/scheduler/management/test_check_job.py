"""check_job: state, schedule, executions and leases in text and JSON; clear failures."""

import json
from datetime import UTC, datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from scheduler.models import JobLease, ScheduledJob, SchedulerInstance
from scheduler.services.calendars import calendar_save
from scheduler.services.executions import execution_fail, execution_start
from scheduler.services.jobs import job_delete, job_pause
from scheduler.services.schedules import job_upcoming_fire_times
from tests.factories import CronJobFactory, ExecutionFactory, IntervalJobFactory


def run(*args):
    out = StringIO()
    call_command("check_job", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def busy_job(db):
    """A paused cron job with a failed run and a running one holding a lease."""
    job = CronJobFactory(name="nightly report", cron_expression="0 2 * * 0", timezone="Europe/Paris")
    failed = ExecutionFactory(job=job)
    execution_start(failed, instance_id="host-a")
    execution_fail(failed, error="disk full\nmore detail")
    running = ExecutionFactory(job=job, scheduled_time=timezone.now() + timedelta(seconds=1))
    execution_start(running, instance_id="host-a")
    now = timezone.now()
    SchedulerInstance.objects.create(instance_id="host-a", hostname="host", pid=1, started_at=now, last_heartbeat=now)
    JobLease.objects.create(
        job=job, execution=running, locked_by="host-a", locked_at=now, expires_at=now + timedelta(hours=1)
    )
    job = job_pause(job, reason="maintenance")
    return job, failed, running


def test_text_report(busy_job):
    job, failed, running = busy_job
    output = run("--job-id", str(job.pk))
    assert f"Job {job.pk}: nightly report" in output
    assert "State:      paused (maintenance)" in output
    assert "At 02:00, only on Sunday (Europe/Paris)" in output
    assert "Next run:   20" in output
    assert "Leases held: 1" in output
    assert f"execution {running.pk} held by host-a (alive)" in output
    assert f"#{failed.pk}" in output and "disk full" in output and "more detail" not in output


def test_json_report(busy_job):
    job, failed, running = busy_job
    report = json.loads(run("--job-id", str(job.pk), "--json"))
    assert report["state"] == "paused"
    assert report["schedule"] == "At 02:00, only on Sunday (Europe/Paris)"
    assert report["next_run_time"] is not None
    assert [e["id"] for e in report["recent_executions"]] == [running.pk, failed.pk]
    assert report["recent_executions"][1]["status"] == "failed"
    assert report["leases"] == [
        {
            "execution_id": running.pk,
            "locked_by": "host-a",
            "holder_alive": True,
            "locked_at": report["leases"][0]["locked_at"],
            "expires_at": report["leases"][0]["expires_at"],
            "expired": False,
        }
    ]


def test_upcoming_fire_times_are_the_engines(db):
    job = CronJobFactory(cron_expression="*/30 * * * *", timezone="America/New_York")
    report = json.loads(run("--job-id", str(job.pk), "--json"))
    expected = job_upcoming_fire_times(job, 5)
    assert [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in report["upcoming_fire_times"]] == expected
    output = run("--job-id", str(job.pk))
    assert f"Upcoming:   {expected[0].astimezone(ZoneInfo('America/New_York')):%Y-%m-%d %H:%M %Z}, " in output


def test_a_paused_job_has_no_upcoming_fire_times(busy_job):
    job, _, _ = busy_job
    assert json.loads(run("--job-id", str(job.pk), "--json"))["upcoming_fire_times"] == []
    assert "Upcoming:   -" in run("--job-id", str(job.pk))


def test_limit_caps_recent_executions(db):
    job = IntervalJobFactory()
    for _ in range(3):
        ExecutionFactory(job=job, scheduled_time=timezone.now() - timedelta(minutes=_))
    report = json.loads(run("--job-id", str(job.pk), "--json", "--limit", "2"))
    assert len(report["recent_executions"]) == 2


def test_missing_job_exits_1(db):
    with pytest.raises(CommandError) as exc:
        run("--job-id", "424242")
    assert exc.value.returncode == 1
    assert "No job has id 424242" in str(exc.value)


def test_deleted_job_exits_1(db):
    job = IntervalJobFactory(name="gone")
    job_delete(job)
    with pytest.raises(CommandError) as exc:
        run("--job-id", str(job.pk))
    assert exc.value.returncode == 1
    assert "was deleted" in str(exc.value) and "'gone'" in str(exc.value)


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "--job-id"),
        (["--job-id", "abc"], "invalid int value"),
        (["--job-id", "1", "--limit", "0"], "--limit must be between 1 and 200"),
    ],
)
def test_bad_arguments(db, args, message):
    with pytest.raises(CommandError) as exc:
        run(*args)
    assert message in str(exc.value)
    if args[-2:] == ["--limit", "0"]:
        assert exc.value.returncode == 2


def test_the_report_says_when_the_job_runs_and_why_the_scheduler_disabled_it(db):
    calendar = calendar_save(name="France", timezone="Europe/Paris", dates=["2030-12-25"])
    job = CronJobFactory(
        cron_expression="0 9 * * *",
        jitter_seconds=30,
        max_runs=4,
        exclude_calendar=calendar,
        start_at=datetime(2030, 1, 1, tzinfo=UTC),
    )
    text = run("--job-id", str(job.pk))
    assert "When:       from 2030-01-01 00:00:00 UTC to -, jitter up to 30 s, 4 of 4 runs left" in text
    assert "skips calendar 'France'" in text and ", starts 2030-01-01 09:00:" in text
    ScheduledJob.objects.filter(pk=job.pk).update(
        is_enabled=False, next_run_time=None, disabled_reason="completed 4 runs"
    )
    assert "State:      disabled (completed 4 runs)" in run("--job-id", str(job.pk))

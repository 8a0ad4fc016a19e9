"""backfill_job: queues the past fire times that did not run, and exit code 2 with the reason on bad input."""

import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from scheduler.enums import ExecutionTrigger
from scheduler.models import ExecutionStatus, JobExecution
from scheduler.services.jobs import job_delete
from tests.factories import CronJobFactory

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[3]


def last_hour():
    return timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def run(*args):
    out = StringIO()
    call_command("backfill_job", *args, stdout=out)
    return out.getvalue()


def test_backfill_queues_the_runs_and_lists_their_fire_times():
    job = CronJobFactory(cron_expression="0 * * * *")
    end = last_hour()
    JobExecution.objects.create(
        job=job, status=ExecutionStatus.SUCCESS, trigger=ExecutionTrigger.SCHEDULED, scheduled_time=end
    )
    args = ["--job-id", str(job.pk), "--start", (end - timedelta(hours=3)).isoformat(), "--end", end.isoformat()]
    dry = run(*args, "--dry-run")
    assert f"Would queue 2 backfilled runs of job {job.pk}" in dry and "1 fire time in the range had already run" in dry
    assert not JobExecution.objects.filter(trigger=ExecutionTrigger.BACKFILL).exists()
    output = run(*args)
    assert output.startswith(f"Queued 2 backfilled runs of job {job.pk}")
    assert (end - timedelta(hours=2)).isoformat() in output
    assert JobExecution.objects.filter(job=job, trigger=ExecutionTrigger.BACKFILL).count() == 2


@pytest.mark.parametrize(
    "start, end, fragment",
    [
        ("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z", "--end: end must be after start"),
        ("2026-01-01T00:00:00Z", "2999-01-01T00:00:00Z", "--end: A backfill covers the past only"),
        ("2000-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "more than 10,000 fire times"),
        ("2026-01-01T00:00:00", "2026-01-02T00:00:00Z", "--start: '2026-01-01T00:00:00' has no UTC offset"),
        ("2026-01-01T00:00:00Z", "tomorrow", "--end: 'tomorrow' is not an ISO 8601"),
    ],
)
def test_bad_ranges_exit_2_saying_why(start, end, fragment):
    job = CronJobFactory(cron_expression="*/5 * * * *")
    with pytest.raises(CommandError) as exc:
        run("--job-id", str(job.pk), "--start", start, "--end", end)
    assert exc.value.returncode == 2
    assert fragment in str(exc.value)
    assert not JobExecution.objects.exists()


def test_an_unknown_or_deleted_job_exits_2():
    job = CronJobFactory()
    job_delete(job)
    for job_id in (job.pk, 999_999):
        with pytest.raises(CommandError) as exc:
            run("--job-id", str(job_id), "--start", "2026-01-01T00:00:00Z", "--end", "2026-01-01T01:00:00Z")
        assert exc.value.returncode == 2 and "No job with id" in str(exc.value)


def test_bad_arguments_exit_2_from_the_command_line():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    for args in (
        ["--start", "x", "--end", "y"],
        ["--job-id", "1", "--start", "a", "--end", "b", "--overlap-policy", "skip"],
    ):
        result = subprocess.run(
            [sys.executable, "manage.py", "backfill_job", *args], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert result.returncode == 2, result.stderr
        assert "--job-id" in result.stderr or "--overlap-policy" in result.stderr

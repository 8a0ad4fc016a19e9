"""Tests of `manage.py import_celery_beat` against django-celery-beat's real tables (its own models
and migrations, installed by the test settings only): in the test database, and in a database of
their own reached with --database."""

import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from scheduler.models import JobType, ScheduledJob
from tests.factories import IntervalJobFactory
from tests.scheduler.engine.conftest import database_url

BEAT_DATABASE = "celery_beat"


def seed(using: str) -> None:
    """A beat schedule with each kind of task a team leaving django-celery-beat may have."""
    now = timezone.now()

    def crontab(**fields):
        return CrontabSchedule.objects.using(using).create(**fields)

    def every(n, period):
        return IntervalSchedule.objects.using(using).create(every=n, period=period)

    def task(name, task_name="tasks.functions.echo", **fields):
        periodic = PeriodicTask(name=name, task=task_name, **fields)
        periodic.save(using=using)

    paris = crontab(minute="30", hour="2", day_of_week="1-5", timezone="Europe/Paris")
    task("nightly report", crontab=paris, kwargs='{"message": "nightly"}', priority=7, description="From beat.")
    task("every 90 seconds", "tasks.functions.noop", interval=every(90, "seconds"), args="[1, 2]")
    task("hourly, disabled", crontab=crontab(minute="0"), enabled=False)
    task("one off, not run yet", interval=every(1, "days"), one_off=True)
    task("one off, ran", interval=every(2, "hours"), one_off=True, enabled=False, total_run_count=0)
    task("expired", interval=every(5, "minutes"), expires=now - timedelta(days=1))
    task(
        "windowed",
        interval=every(10, "minutes"),
        start_time=now + timedelta(days=2),
        expires=now + timedelta(days=30),
        queue="reports",
    )
    task("send mail", "myproject.tasks.send_mail", interval=every(1, "minutes"))
    task("celery.backend_cleanup", "celery.backend_cleanup", crontab=crontab(minute="0", hour="4"))
    clocked = ClockedSchedule.objects.using(using).create(clocked_time=now + timedelta(days=1))
    task("at a set time", clocked=clocked, one_off=True)
    sun = SolarSchedule.objects.using(using).create(event="sunrise", latitude=48.85, longitude=2.35)
    task("at sunrise", solar=sun)
    task("first monday", crontab=crontab(minute="0", hour="9", day_of_month="1-7", day_of_week="1"))
    task("bad args", interval=every(3, "minutes"), args="not json")
    task("tiny interval", interval=every(500, "microseconds"))
    task("bad cron", crontab=crontab(minute="61"))
    task("taken name", interval=every(4, "minutes"))


def run(*args) -> list[str]:
    out = StringIO()
    call_command("import_celery_beat", *args, stdout=out)
    return out.getvalue().splitlines()


def line_for(lines, name) -> str:
    [line] = [line for line in lines if f": {name!r} (" in line]
    return line


def job(name) -> ScheduledJob:
    return ScheduledJob.objects.active().select_related("task_function").get(name=name)


def check_imported(lines: list[str], verb: str = "created") -> None:
    assert line_for(lines, "nightly report") == (
        f"{verb}: 'nightly report' (tasks.functions.echo, cron \"30 2 * * 1-5\" in Europe/Paris)"
    )
    assert "skipped: 'send mail' (Celery task 'myproject.tasks.send_mail' is not a registered task function" in (
        line_for(lines, "send mail")
    )
    assert line_for(lines, "celery.backend_cleanup").startswith("skipped: 'celery.backend_cleanup' (Celery task")
    assert "clocked schedule" in line_for(lines, "at a set time")
    assert "solar schedule" in line_for(lines, "at sunrise")
    assert "both day of month '1-7' and day of week '1'" in line_for(lines, "first monday")
    assert "args are not JSON" in line_for(lines, "bad args")
    assert "microseconds cannot be held" in line_for(lines, "tiny interval")
    assert line_for(lines, "bad cron").startswith("skipped: 'bad cron' (not a valid job here: cron_expression: ")
    assert "a job of this name exists already" in line_for(lines, "taken name")
    one_off = line_for(lines, "one off, not run yet")
    assert one_off.startswith(f"{verb}: 'one off, not run yet' (tasks.functions.echo, every 1 days); not carried over")
    assert "one_off (jobs repeat): imported disabled" in one_off
    windowed = line_for(lines, "windowed")
    assert "start_time " in windowed and "it runs from now on" in windowed
    assert "(jobs have no end time): it keeps running after that" in windowed
    assert "queue 'reports'" in windowed
    assert "expires (" in line_for(lines, "expired") and "passed): imported disabled" in line_for(lines, "expired")
    assert lines[-1].endswith("7 created, 9 skipped.") or lines[-1].endswith("7 to create, 9 skipped.")


def check_jobs() -> None:
    nightly = job("nightly report")
    assert (nightly.job_type_id, nightly.cron_expression, nightly.timezone) == (
        JobType.CRON,
        "30 2 * * 1-5",
        "Europe/Paris",
    )
    assert (nightly.kwargs, nightly.priority, nightly.description, nightly.is_enabled) == (
        {"message": "nightly"},
        7,
        "From beat.",
        True,
    )
    assert nightly.next_run_time is not None and not nightly.managed_by
    poll = job("every 90 seconds")
    assert (poll.job_type_id, poll.interval_seconds, poll.args, poll.task_function.name) == (
        JobType.INTERVAL,
        90,
        [1, 2],
        "tasks.functions.noop",
    )
    assert (poll.timezone, poll.priority) == (settings.TIME_ZONE, 0)
    assert not job("hourly, disabled").is_enabled and job("hourly, disabled").next_run_time is None
    assert not job("one off, not run yet").is_enabled
    assert not job("one off, ran").is_enabled
    assert not job("expired").is_enabled
    assert job("windowed").is_enabled and job("windowed").interval_minutes == 10
    assert job("taken name").interval_minutes == 5  # the job made by hand, untouched
    for skipped in ("send mail", "celery.backend_cleanup", "at a set time", "at sunrise", "first monday", "bad cron"):
        assert not ScheduledJob.objects.filter(name=skipped).exists()


@pytest.mark.django_db
def test_import_from_beat_tables_in_the_same_database():
    seed("default")
    IntervalJobFactory(name="taken name", interval_minutes=5)
    lines = run()
    check_imported(lines)
    check_jobs()
    assert lines[-1] == (
        "Imported 7 of 16 django-celery-beat periodic tasks from database 'default': 7 created, 9 skipped."
    )
    # Again: everything is there already, nothing is duplicated.
    again = run()
    assert again[-1].endswith(": 0 created, 16 skipped.")
    assert ScheduledJob.objects.active().filter(name="nightly report").count() == 1


@pytest.mark.django_db(databases=["default", BEAT_DATABASE])
def test_import_from_a_database_of_their_own_with_a_dry_run_first():
    seed(BEAT_DATABASE)
    assert not PeriodicTask.objects.using("default").exists()
    IntervalJobFactory(name="taken name", interval_minutes=5)
    before = set(ScheduledJob.objects.values_list("pk", flat=True))
    dry = run("--dry-run", "--database", BEAT_DATABASE)
    check_imported(dry, verb="would create")
    assert dry[-1].startswith("Dry run, nothing written: would import 7 of 16")
    assert set(ScheduledJob.objects.values_list("pk", flat=True)) == before
    lines = run("--database", BEAT_DATABASE)
    assert [line.replace("would create", "created") for line in dry[:-1]] == lines[:-1]
    check_jobs()


@pytest.mark.django_db(databases=["default", BEAT_DATABASE])
def test_a_database_without_beat_tables_or_an_unknown_alias_is_refused():
    with pytest.raises(CommandError, match="No database alias 'nowhere'") as exc:
        run("--database", "nowhere")
    assert exc.value.returncode == 2
    from django.db import connections

    with connections[BEAT_DATABASE].cursor() as cursor:
        cursor.execute("DROP TABLE django_celery_beat_periodictask")
    with pytest.raises(CommandError, match="has no django-celery-beat tables") as exc:
        run("--database", BEAT_DATABASE)
    assert exc.value.returncode == 2


def test_the_product_settings_import_without_django_celery_beat_installed(transactional_db):
    """The product's own settings (no django_celery_beat app) read the tables the tests made."""
    from config.settings import base

    assert "django_celery_beat" not in base.INSTALLED_APPS
    seed("default")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": database_url(),
    }
    result = subprocess.run(
        [sys.executable, "-c", "import django_celery_beat"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0  # installed for the tests, so the next check means something
    result = subprocess.run(
        [sys.executable, str(settings.BASE_DIR / "manage.py"), "import_celery_beat", "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=settings.BASE_DIR,
    )
    assert result.returncode == 0, result.stderr
    assert "would create: 'nightly report' (tasks.functions.echo" in result.stdout
    assert "Dry run, nothing written: would import 8 of 16" in result.stdout

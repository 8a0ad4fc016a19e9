"""Data migrations run on rows as an older release left them."""

from datetime import UTC, datetime
from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from scheduler.models import JobType, ScheduledJob, TaskFunction
from scheduler.services.task_functions import task_functions_sync

BEFORE = ("scheduler", "0006_instance_clock_offset")
VIXIE_RULES = ("scheduler", "0007_cron_next_run_times_vixie_rules")
# 01:50 EDT on the night New York falls back: the old rule skipped the repeated hour.
NOW = datetime(2026, 11, 1, 5, 50, tzinfo=UTC)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def old_rows(transactional_db):
    """Migrate back to before 0005, then write jobs with next run times the old rules computed."""
    for pk, name in ((JobType.INTERVAL, "interval"), (JobType.CRON, "cron")):
        JobType.objects.update_or_create(pk=pk, defaults={"name": name})
    task_functions_sync()
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    Job = executor.loader.project_state([BEFORE]).apps.get_model("scheduler", "ScheduledJob")
    function_id = TaskFunction.objects.get(name="tasks.functions.noop").pk

    def job(name, next_run_time, **fields):
        defaults = {"job_type_id": JobType.CRON, "timezone": "UTC", "args": [], "kwargs": {}}
        return Job.objects.create(
            name=name, task_function_id=function_id, next_run_time=next_run_time, **{**defaults, **fields}
        ).pk

    rows = {
        # Old: every odd day or every Monday, so Monday 2 November. New: odd days that are Mondays.
        "days": job("days", utc(2026, 11, 2), cron_expression="0 0 */2 * 1"),
        # Old: 02:00 EST, skipping the repeated hour. New: 01:00 EST, the second 01:00.
        "wildcard": job("wildcard", utc(2026, 11, 1, 7), cron_expression="0 * * * *", timezone="America/New_York"),
        "unchanged": job("unchanged", utc(2026, 11, 2, 2), cron_expression="0 2 * * *"),
        "overdue": job("overdue", utc(2026, 11, 1, 5), cron_expression="0 0 */2 * 1"),
        "disabled": job("disabled", utc(2026, 11, 2), cron_expression="0 0 */2 * 1", is_enabled=False),
        "interval": job("interval", utc(2026, 11, 1, 6), job_type_id=JobType.INTERVAL, interval_minutes=10),
        # Old: every 30 February or every even weekday. New: a 30 February on an even weekday: never.
        "never": job("never", utc(2026, 11, 2), cron_expression="0 0 30 2 */2"),
    }
    yield executor, rows
    _migrate_to_latest()  # leave the schema as the other tests expect it


def test_next_run_times_follow_the_new_rules(old_rows):
    executor, rows = old_rows
    executor.loader.build_graph()
    with mock.patch("django.utils.timezone.now", return_value=NOW):
        executor.migrate([VIXIE_RULES])

    next_runs = dict(ScheduledJob.objects.filter(pk__in=rows.values()).values_list("name", "next_run_time"))
    assert next_runs == {
        "days": utc(2026, 11, 9),  # Monday the 9th, the first odd-day Monday after now
        "wildcard": utc(2026, 11, 1, 6),
        "unchanged": utc(2026, 11, 2, 2),
        "overdue": utc(2026, 11, 1, 5),  # left to the misfire rules
        "disabled": utc(2026, 11, 2),
        "interval": utc(2026, 11, 1, 6),
        "never": utc(2026, 11, 2),
    }
    never = ScheduledJob.objects.get(pk=rows["never"])
    assert never.is_paused and "paused on upgrade: its schedule has no next fire time" in never.pause_reason
    assert not ScheduledJob.objects.filter(is_paused=True).exclude(pk=rows["never"]).exists()


def test_lease_permissions_are_renamed_with_the_model(transactional_db):
    def lease_codenames():
        return set(Permission.objects.filter(content_type__app_label="scheduler").values_list("codename", flat=True))

    granted = {f"{action}_joblease" for action in ("add", "change", "delete", "view")}
    assert granted <= lease_codenames()  # made by post_migrate when the test database was set up
    executor = MigrationExecutor(connection)
    executor.migrate([("scheduler", "0004_interval_check_counts_nulls")])
    assert {c.replace("joblease", "scheduledjoblock") for c in granted} <= lease_codenames()
    executor.loader.build_graph()
    executor.migrate([("scheduler", "0005_lease_model_name")])
    assert granted <= lease_codenames() and not any(c.endswith("_scheduledjoblock") for c in lease_codenames())
    assert Permission.objects.get(codename="view_joblease").name == "Can view job lease"
    _migrate_to_latest()


def _migrate_to_latest():
    """Every migration applied again: later migrations (new tables) are what the other tests use."""
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

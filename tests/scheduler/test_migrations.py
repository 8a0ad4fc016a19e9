"""Data migrations run on rows as an older release left them."""

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Q, Sum

from scheduler.models import JobExecution, JobType, ScheduledJob, TaskFunction
from scheduler.services.task_functions import task_functions_sync

BEFORE = ("scheduler", "0006_instance_clock_offset")
VIXIE_RULES = ("scheduler", "0007_cron_next_run_times_vixie_rules")
# 01:50 EDT on the night New York falls back: the old rule skipped the repeated hour.
NOW = datetime(2026, 11, 1, 5, 50, tzinfo=UTC)


BEFORE_WHEN_A_JOB_RUNS = ("scheduler", "0011_operator_tools")
WHEN_A_JOB_RUNS = ("scheduler", "0013_backfill_unique_fire_times")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def migrate_to_latest() -> None:
    """Leave the schema as the other tests expect it: every migration applied, later ones included."""
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    # What `migrate` does after the last migration: the summaries' triggers, again.
    from scheduler.backends import backend

    backend().summaries_install()


@pytest.fixture
def old_rows(transactional_db):
    """Migrate back to before 0005, then write jobs with next run times the old rules computed."""
    for pk, name in ((JobType.INTERVAL, "interval"), (JobType.CRON, "cron"), (JobType.DATE, "date")):
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
    migrate_to_latest()  # leave the schema as the other tests expect it


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
    # Only the columns this migration knows: later migrations add others.
    is_paused, pause_reason = ScheduledJob.objects.filter(pk=rows["never"]).values_list("is_paused", "pause_reason")[0]
    assert is_paused and "paused on upgrade: its schedule has no next fire time" in pause_reason
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
    migrate_to_latest()


SUMMARIES = ("scheduler", "0010_fleet_scale_summaries_and_indexes")


def test_the_summaries_count_the_history_an_older_release_left(transactional_db):
    """Migrating to the summaries counts the existing rows once; from then on the triggers count."""
    for pk, name in ((JobType.INTERVAL, "interval"), (JobType.CRON, "cron")):
        JobType.objects.update_or_create(pk=pk, defaults={"name": name})
    task_functions_sync()
    executor = MigrationExecutor(connection)
    executor.migrate([VIXIE_RULES])
    state = executor.loader.project_state([VIXIE_RULES]).apps
    Job, Execution = state.get_model("scheduler", "ScheduledJob"), state.get_model("scheduler", "JobExecution")
    function_id = TaskFunction.objects.get(name="tasks.functions.noop").pk
    common = {"task_function_id": function_id, "job_type_id": JobType.INTERVAL, "interval_minutes": 5}
    job = Job.objects.create(name="old", args=[], kwargs={}, timezone="UTC", **common)
    Job.objects.create(name="paused", is_paused=True, args=[], kwargs={}, timezone="UTC", **common)
    ended = utc(2026, 3, 1, 12, 0, 30)
    for n, status in enumerate(["success", "success", "failed", "missed", "running"]):
        Execution.objects.create(
            job_id=job.pk,
            status=status,
            trigger="scheduled",
            scheduled_time=ended - timedelta(minutes=n),
            started_at=None if status == "missed" else ended - timedelta(seconds=2),
            finished_at=None if status == "running" else ended,
            duration_ms=2000 if status in ("success", "failed") else None,
        )
    executor.loader.build_graph()
    executor.migrate([SUMMARIES])
    from scheduler.models import ExecutionSummary, JobTally

    ends = dict(ExecutionSummary.objects.ends().values_list("status").annotate(n=Sum("runs")))
    assert ends == {"success": 2, "failed": 1, "missed": 1}
    assert ExecutionSummary.objects.starts().aggregate(n=Sum("runs"))["n"] == 4
    assert JobTally.objects.jobs(Q(is_active=True, is_paused=True)) == 1
    assert JobTally.objects.jobs() == ScheduledJob.objects.count()
    migrate_to_latest()


def test_jobs_and_runs_from_before_when_a_job_runs_keep_firing_and_keep_their_runs(transactional_db):
    for pk, name in ((JobType.INTERVAL, "interval"), (JobType.CRON, "cron")):
        JobType.objects.update_or_create(pk=pk, defaults={"name": name})
    task_functions_sync()
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE_WHEN_A_JOB_RUNS])
    old = executor.loader.project_state([BEFORE_WHEN_A_JOB_RUNS]).apps
    function_id = TaskFunction.objects.get(name="tasks.functions.noop").pk
    job = old.get_model("scheduler", "ScheduledJob").objects.create(
        name="old",
        task_function_id=function_id,
        job_type_id=JobType.CRON,
        cron_expression="0 * * * *",
        timezone="UTC",
        args=[],
        kwargs={},
        next_run_time=utc(2026, 1, 5, 12),
    )
    old.get_model("scheduler", "JobExecution").objects.create(
        job_id=job.pk, status="success", trigger="scheduled", scheduled_time=utc(2026, 1, 5, 11)
    )
    executor.loader.build_graph()
    executor.migrate([WHEN_A_JOB_RUNS])
    try:
        assert JobType.objects.get(pk=JobType.DATE).name == "date"
        migrated = ScheduledJob.objects.get(pk=job.pk)
        assert (migrated.jitter_seconds, migrated.scheduled_runs, migrated.disabled_reason) == (0, 0, "")
        assert (migrated.next_start_at, migrated.start_time) == (None, utc(2026, 1, 5, 12))
        # Due through the new index (on the start time) with nothing written to next_start_at.
        assert list(ScheduledJob.objects.due(utc(2026, 1, 5, 12)).filter(pk=job.pk)) == [migrated]
        with pytest.raises(IntegrityError):  # the fire time that ran as scheduled cannot run as backfilled
            with transaction.atomic():
                JobExecution.objects.create(
                    job=migrated, status="waiting", trigger="backfill", scheduled_time=utc(2026, 1, 5, 11)
                )
    finally:
        migrate_to_latest()

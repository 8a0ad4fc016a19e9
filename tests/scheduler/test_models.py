"""Tests of the data model: database constraints that hold without the services, seed rows, indexes, querysets."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError

from scheduler.models import (
    ExecutionStatus,
    ExecutionTrigger,
    JobExecution,
    JobLease,
    JobType,
    ScheduledJob,
    SchedulerInstance,
    TaskFunction,
)
from scheduler.services.jobs import job_delete, job_disable, job_pause
from tests.factories import CronJobFactory, ExecutionFactory, IntervalJobFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
BUILT_IN_JOB = "Execution history cleanup"
_names = itertools.count()


@pytest.fixture
def noop(db):
    return TaskFunction.objects.get(name="tasks.functions.noop")


def raw_job(task_function, **fields) -> ScheduledJob:
    """An unsaved interval job row, built without the service layer."""
    values = {
        "name": f"raw job {next(_names)}",
        "task_function": task_function,
        "job_type_id": JobType.INTERVAL,
        "interval_minutes": 5,
    }
    values.update(fields)
    return ScheduledJob(**values)


def refused(save):
    """Run `save` and expect the database itself to refuse it."""
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            save()


# --- schedule matches the job type -----------------------------------------------------------

CRON_ONLY = {"job_type_id": JobType.CRON, "interval_minutes": None, "cron_expression": "0 2 * * *"}


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param(
            {"interval_seconds": 0, "interval_minutes": 0, "interval_hours": 0, "interval_days": 0},
            id="interval-all-zero",
        ),
        pytest.param({"cron_expression": "0 2 * * *"}, id="interval-with-cron"),
        pytest.param({"cron_expression": ""}, id="interval-with-empty-cron"),
        pytest.param({**CRON_ONLY, "cron_expression": None}, id="cron-without-expression"),
        pytest.param({**CRON_ONLY, "cron_expression": ""}, id="cron-with-empty-expression"),
        pytest.param({**CRON_ONLY, "interval_minutes": 5}, id="cron-with-minutes"),
        pytest.param({**CRON_ONLY, "interval_days": 1}, id="cron-with-days"),
        pytest.param({**CRON_ONLY, "interval_seconds": 0}, id="cron-with-zero-seconds"),
    ],
)
def test_schedule_that_does_not_match_the_job_type_is_refused(noop, fields):
    refused(lambda: raw_job(noop, **fields).save())
    refused(lambda: ScheduledJob.objects.bulk_create([raw_job(noop, **fields)]))


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"interval_minutes": None}, id="all-null"),
        pytest.param({"interval_minutes": 0}, id="zero-and-nulls"),
    ],
)
def test_interval_job_without_a_positive_interval_is_refused_even_with_nulls(noop, fields):
    refused(lambda: raw_job(noop, **fields).save())


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({}, id="interval-minutes"),
        pytest.param({"interval_minutes": None, "interval_seconds": 1}, id="interval-seconds"),
        pytest.param({"interval_minutes": 0, "interval_hours": 0, "interval_days": 2}, id="interval-zero-and-days"),
        pytest.param(CRON_ONLY, id="cron"),
    ],
)
def test_schedule_that_matches_the_job_type_is_stored(noop, fields):
    job = raw_job(noop, **fields)
    job.save()
    assert ScheduledJob.objects.filter(pk=job.pk).exists()


# --- limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 11, 100])
def test_max_instances_outside_1_to_10_is_refused(noop, value):
    refused(lambda: raw_job(noop, max_instances=value).save())


@pytest.mark.parametrize("value", [1, 10])
def test_max_instances_bounds_are_stored(noop, value):
    raw_job(noop, max_instances=value).save()


def test_misfire_grace_time_below_1_is_refused(noop):
    refused(lambda: raw_job(noop, misfire_grace_time=0).save())
    raw_job(noop, misfire_grace_time=1).save()


def test_limits_hold_for_updates_that_bypass_the_model(noop):
    job = raw_job(noop)
    job.save()
    refused(lambda: ScheduledJob.objects.filter(pk=job.pk).update(max_instances=0))
    refused(lambda: ScheduledJob.objects.filter(pk=job.pk).update(misfire_grace_time=0))
    refused(lambda: ScheduledJob.objects.filter(pk=job.pk).update(cron_expression="* * * * *"))
    job.refresh_from_db()
    assert (job.max_instances, job.misfire_grace_time, job.cron_expression) == (1, 60, None)


# --- unique active name ----------------------------------------------------------------------


def test_two_active_jobs_cannot_share_a_name(noop):
    raw_job(noop, name="backup").save()
    refused(lambda: raw_job(noop, name="backup").save())
    refused(lambda: ScheduledJob.objects.bulk_create([raw_job(noop, name="archive"), raw_job(noop, name="archive")]))


def test_a_deleted_job_does_not_hold_its_name(noop):
    raw_job(noop, name="backup", is_active=False).save()
    raw_job(noop, name="backup", is_active=False).save()
    raw_job(noop, name="backup").save()
    assert ScheduledJob.objects.filter(name="backup").count() == 3
    assert ScheduledJob.objects.active().filter(name="backup").count() == 1


def test_undeleting_a_job_whose_name_was_reused_is_refused(noop):
    old = IntervalJobFactory(name="backup")
    job_delete(old)
    IntervalJobFactory(name="backup")
    refused(lambda: ScheduledJob.objects.filter(pk=old.pk).update(is_active=True))


def test_built_in_job_name_is_held_in_the_database(noop):
    refused(lambda: raw_job(noop, name=BUILT_IN_JOB).save())


# --- one scheduled run per (job, fire time) ----------------------------------------------------


def execution_row(job, trigger, when=NOW):
    return JobExecution(job=job, trigger=trigger, scheduled_time=when, status=ExecutionStatus.PENDING)


def test_a_fire_time_of_a_job_is_recorded_once(interval_job):
    execution_row(interval_job, ExecutionTrigger.SCHEDULED).save()
    refused(lambda: execution_row(interval_job, ExecutionTrigger.SCHEDULED).save())
    later = NOW + timedelta(minutes=5)
    refused(
        lambda: JobExecution.objects.bulk_create(
            [execution_row(interval_job, ExecutionTrigger.SCHEDULED, later) for _ in range(2)]
        )
    )


def test_the_guard_ignores_the_status_of_the_first_run(interval_job):
    ExecutionFactory(job=interval_job, scheduled_time=NOW, status=ExecutionStatus.MISSED)
    refused(lambda: execution_row(interval_job, ExecutionTrigger.SCHEDULED).save())


def test_manual_runs_may_share_a_time_with_each_other_and_with_a_scheduled_run(interval_job):
    execution_row(interval_job, ExecutionTrigger.SCHEDULED).save()
    execution_row(interval_job, ExecutionTrigger.MANUAL).save()
    execution_row(interval_job, ExecutionTrigger.MANUAL).save()
    assert interval_job.executions.filter(scheduled_time=NOW).count() == 3


def test_different_jobs_may_fire_at_the_same_time(interval_job, cron_job):
    execution_row(interval_job, ExecutionTrigger.SCHEDULED).save()
    execution_row(cron_job, ExecutionTrigger.SCHEDULED).save()


# --- rows kept for history -------------------------------------------------------------------


def test_a_task_function_used_by_a_job_cannot_be_deleted(interval_job):
    with pytest.raises(ProtectedError):
        interval_job.task_function.delete()


def test_a_job_type_in_use_cannot_be_deleted(interval_job):
    with pytest.raises(ProtectedError):
        JobType.objects.get(pk=JobType.INTERVAL).delete()


# --- seed rows and indexes -------------------------------------------------------------------


def test_job_types_1_interval_and_2_cron_exist():
    assert list(JobType.objects.values_list("id", "name")) == [(1, "interval"), (2, "cron")]
    assert (JobType.INTERVAL, JobType.CRON) == (1, 2)


def test_built_in_history_cleanup_job_exists():
    job = ScheduledJob.objects.active().get(name=BUILT_IN_JOB)
    assert job.task_function.name == "tasks.functions.cleanup_executions"
    assert job.task_function.is_active and job.task_function.description  # filled in by the sync
    assert job.is_cron and job.cron_expression == "30 3 * * *"
    assert job.is_enabled and not job.is_paused and job.next_run_time is not None


def index_definition(name: str) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [name])
        else:
            cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = %s", [name])
        row = cursor.fetchone()
    return row[0] if row else ""


def test_partial_index_on_next_run_time_of_jobs_that_can_fire_exists():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, ScheduledJob._meta.db_table)
    assert constraints["scheduler_job_due_idx"]["index"] is True
    assert constraints["scheduler_job_due_idx"]["columns"] == ["next_run_time"]
    definition = index_definition("scheduler_job_due_idx").lower()
    assert "where" in definition
    for column in ("is_active", "is_enabled", "is_paused"):
        assert column in definition.split("where", 1)[1]


def test_database_constraints_are_installed():
    with connection.cursor() as cursor:
        jobs = connection.introspection.get_constraints(cursor, ScheduledJob._meta.db_table)
        executions = connection.introspection.get_constraints(cursor, JobExecution._meta.db_table)
    if connection.vendor == "postgresql":  # SQLite does not report named CHECK constraints
        for name in (
            "scheduler_job_max_instances_range",
            "scheduler_job_misfire_grace_positive",
            "scheduler_job_schedule_matches_type",
        ):
            assert jobs[name]["check"] is True, name
    assert jobs["scheduler_job_unique_active_name"]["unique"] is True
    assert executions["scheduler_exec_unique_scheduled_run"]["unique"] is True
    assert executions["scheduler_exec_unique_scheduled_run"]["columns"] == ["job_id", "scheduled_time"]


# --- model helpers ---------------------------------------------------------------------------


def test_interval_total_and_type_helpers(noop):
    job = raw_job(noop, interval_seconds=1, interval_minutes=2, interval_hours=3, interval_days=4)
    assert job.interval_total_seconds == 1 + 120 + 3 * 3600 + 4 * 86400
    assert job.is_interval and not job.is_cron
    assert raw_job(noop, interval_minutes=None).interval_total_seconds == 0
    assert raw_job(noop, **CRON_ONLY).is_cron


def test_inactive_task_function_says_so_in_lists(noop):
    assert str(noop) == "tasks.functions.noop"
    noop.is_active = False
    assert str(noop) == "tasks.functions.noop (inactive)"


# --- querysets -------------------------------------------------------------------------------


def at(job, when):
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=when)
    return job


def test_schedulable_is_active_enabled_and_not_paused():
    ready = IntervalJobFactory()
    paused = job_pause(IntervalJobFactory())
    disabled = job_disable(IntervalJobFactory())
    deleted = IntervalJobFactory()
    job_delete(deleted)
    mine = [ready.pk, paused.pk, disabled.pk, deleted.pk]
    assert list(ScheduledJob.objects.schedulable().filter(pk__in=mine)) == [ready]
    assert set(ScheduledJob.objects.active().filter(pk__in=mine)) == {ready, paused, disabled}


def test_due_returns_schedulable_jobs_whose_time_has_come_highest_priority_first():
    low_early = at(IntervalJobFactory(priority=0), NOW - timedelta(minutes=10))
    low_late = at(IntervalJobFactory(priority=0), NOW - timedelta(minutes=1))
    high = at(IntervalJobFactory(priority=5), NOW - timedelta(seconds=1))
    exactly_now = at(IntervalJobFactory(priority=0), NOW)
    tie_a = at(IntervalJobFactory(priority=-1), NOW - timedelta(minutes=3))
    tie_b = at(IntervalJobFactory(priority=-1), NOW - timedelta(minutes=3))
    future = at(IntervalJobFactory(priority=9), NOW + timedelta(seconds=1))
    paused = at(job_pause(IntervalJobFactory(priority=9)), NOW - timedelta(hours=1))
    disabled = job_disable(IntervalJobFactory(priority=9))
    mine = [j.pk for j in (low_early, low_late, high, exactly_now, tie_a, tie_b, future, paused, disabled)]
    due = list(ScheduledJob.objects.due(now=NOW).filter(pk__in=mine))
    assert due == [high, low_early, low_late, exactly_now, tie_a, tie_b]


def test_due_defaults_to_the_current_time():
    past = at(IntervalJobFactory(), datetime.now(UTC) - timedelta(seconds=5))
    soon = at(IntervalJobFactory(), datetime.now(UTC) + timedelta(hours=1))
    assert list(ScheduledJob.objects.due().filter(pk__in=[past.pk, soon.pk])) == [past]


def test_with_last_execution_annotates_the_newest_run():
    never_ran, ran = IntervalJobFactory(), CronJobFactory()
    older = ExecutionFactory(job=ran, status=ExecutionStatus.FAILED, scheduled_time=NOW)
    newer = ExecutionFactory(job=ran, status=ExecutionStatus.SUCCESS, scheduled_time=NOW + timedelta(minutes=1))
    JobExecution.objects.filter(pk=older.pk).update(created_at=NOW + timedelta(hours=1))
    JobExecution.objects.filter(pk=newer.pk).update(created_at=NOW)
    rows = {j.pk: j for j in ScheduledJob.objects.with_last_execution().filter(pk__in=[never_ran.pk, ran.pk])}
    assert (rows[never_ran.pk].last_execution_status, rows[never_ran.pk].last_execution_id) == (None, None)
    # Newest by creation, not by id or scheduled time.
    assert (rows[ran.pk].last_execution_status, rows[ran.pk].last_execution_id) == ("failed", older.pk)


def test_with_last_execution_breaks_ties_by_id(interval_job):
    first = ExecutionFactory(job=interval_job, status=ExecutionStatus.SUCCESS, scheduled_time=NOW)
    second = ExecutionFactory(
        job=interval_job, status=ExecutionStatus.RUNNING, scheduled_time=NOW + timedelta(minutes=1)
    )
    JobExecution.objects.filter(pk__in=[first.pk, second.pk]).update(created_at=NOW)
    row = ScheduledJob.objects.with_last_execution().get(pk=interval_job.pk)
    assert (row.last_execution_status, row.last_execution_id) == ("running", second.pk)


def test_finished_and_unfinished_executions(interval_job):
    by_status = {
        status: ExecutionFactory(job=interval_job, status=status, scheduled_time=NOW + timedelta(minutes=i))
        for i, status in enumerate(ExecutionStatus.values)
    }
    assert {e.status for e in JobExecution.objects.unfinished()} == {"pending", "waiting", "running"}
    assert {e.status for e in JobExecution.objects.finished()} == {
        "success",
        "failed",
        "timed_out",
        "cancelled",
        "skipped",
        "missed",
    }
    assert len(by_status) == 9


def test_live_and_expired_leases(interval_job):
    def lease(expires_at, minute):
        execution = ExecutionFactory(job=interval_job, scheduled_time=NOW + timedelta(minutes=minute))
        return JobLease.objects.create(
            job=interval_job, execution=execution, locked_by="sched-1", locked_at=NOW, expires_at=expires_at
        )

    live = lease(NOW + timedelta(seconds=1), 1)
    on_the_dot = lease(NOW, 2)
    expired = lease(NOW - timedelta(hours=1), 3)
    assert list(JobLease.objects.live(now=NOW)) == [live]
    assert set(JobLease.objects.expired(now=NOW)) == {on_the_dot, expired}


def test_alive_instances_have_heartbeated_within_three_intervals_and_not_stopped(settings):
    settings.SCHEDULER_HEARTBEAT_INTERVAL = 10

    def instance(name, heartbeat_age, stopped=False):
        return SchedulerInstance.objects.create(
            instance_id=name,
            hostname="host",
            pid=1,
            started_at=NOW - timedelta(hours=1),
            last_heartbeat=NOW - timedelta(seconds=heartbeat_age),
            stopped_at=NOW if stopped else None,
        )

    fresh = instance("fresh", 1)
    at_limit = instance("at-limit", 30)
    instance("silent", 31)
    instance("stopped", 1, stopped=True)
    assert set(SchedulerInstance.objects.alive(now=NOW)) == {fresh, at_limit}
    settings.SCHEDULER_HEARTBEAT_INTERVAL = 20
    assert SchedulerInstance.objects.alive(now=NOW).count() == 3

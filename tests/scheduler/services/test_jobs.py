"""Tests of the job services: validation, next run times, pause/resume, enable/disable, delete, trigger."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import transaction

from scheduler.models import (
    ExecutionStatus,
    ExecutionTrigger,
    JobExecution,
    JobType,
    ScheduledJob,
    TaskFunction,
)
from scheduler.services.cron import cron_next_fire_times
from scheduler.services.jobs import (
    job_create,
    job_delete,
    job_disable,
    job_enable,
    job_pause,
    job_resume,
    job_trigger,
    job_update,
)
from scheduler.services.schedules import job_schedule_describe, job_upcoming_fire_times
from tests.factories import CronJobFactory, ExecutionFactory, IntervalJobFactory, UserFactory
from tests.scheduler.services.conftest import T0

pytestmark = pytest.mark.django_db

BUILT_IN_JOB = "Execution history cleanup"


def errors_of(exc_info) -> dict:
    return exc_info.value.message_dict


# --- validation on create ------------------------------------------------------------------


INTERVAL_REFUSALS = [
    pytest.param({"timezone": "Mars/Olympus_Mons"}, "timezone", "Unknown timezone", id="unknown-timezone"),
    pytest.param({"timezone": "utc+2"}, "timezone", "IANA", id="non-iana-timezone"),
    pytest.param({"timezone": ""}, "timezone", "", id="blank-timezone"),
    pytest.param({"interval_minutes": None}, "interval_seconds", "at least one", id="no-interval"),
    pytest.param(
        {"interval_minutes": 0, "interval_seconds": 0, "interval_hours": 0, "interval_days": 0},
        "interval_seconds",
        "greater than 0",
        id="all-zero-interval",
    ),
    pytest.param({"interval_minutes": -5}, "interval_minutes", "", id="negative-interval"),
    pytest.param({"interval_minutes": None, "interval_days": 3651}, "interval_days", "3650", id="interval-too-long"),
    pytest.param(
        {"cron_expression": "0 2 * * *"}, "cron_expression", "Interval jobs take no cron", id="interval-and-cron"
    ),
    pytest.param({"job_type_id": 4}, "job_type", "2 (cron) or 3 (date", id="job-type-4"),
    pytest.param({"job_type_id": 0}, "job_type", "1 (interval), 2 (cron) or 3 (date", id="job-type-0"),
    pytest.param({"job_type_id": "cron"}, "job_type", "1 (interval), 2 (cron) or 3 (date", id="job-type-word"),
    pytest.param({"job_type_id": None}, "job_type", "Choose a job type", id="job-type-missing"),
    pytest.param({"task_function": None}, "task_function", "Choose the task function", id="no-task-function"),
    pytest.param({"task_function": 987654}, "task_function", "987654", id="missing-task-function"),
    pytest.param({"args": {"a": 1}}, "args", "JSON list", id="args-dict"),
    pytest.param({"args": "1, 2"}, "args", "JSON list", id="args-string"),
    pytest.param({"args": (1, 2)}, "args", "JSON list", id="args-tuple"),
    pytest.param({"kwargs": [1, 2]}, "kwargs", "JSON object", id="kwargs-list"),
    pytest.param({"kwargs": "seconds=5"}, "kwargs", "JSON object", id="kwargs-string"),
    pytest.param({"max_instances": 0}, "max_instances", "", id="max-instances-0"),
    pytest.param({"max_instances": 11}, "max_instances", "", id="max-instances-11"),
    pytest.param({"misfire_grace_time": 0}, "misfire_grace_time", "", id="misfire-grace-0"),
    pytest.param({"misfire_grace_time": -1}, "misfire_grace_time", "", id="misfire-grace-negative"),
    pytest.param({"name": "x" * 201}, "name", "200", id="name-too-long"),
    pytest.param({"name": ""}, "name", "", id="name-empty"),
    pytest.param({"name": "   "}, "name", "", id="name-blank"),
    pytest.param({"history_limit": 0}, "history_limit", "", id="history-limit-0"),
    pytest.param({"priority": "high"}, "priority", "", id="priority-not-int"),
]

CRON_REFUSALS = [
    pytest.param({"cron_expression": None}, "cron_expression", "needs a cron expression", id="no-cron"),
    pytest.param({"cron_expression": "   "}, "cron_expression", "needs a cron expression", id="blank-cron"),
    pytest.param({"interval_minutes": 5}, "interval_minutes", "Cron jobs take no interval", id="cron-and-minutes"),
    pytest.param({"interval_hours": 1}, "interval_hours", "Cron jobs take no interval", id="cron-and-hours"),
    pytest.param({"interval_seconds": 30}, "interval_seconds", "Cron jobs take no interval", id="cron-and-seconds"),
    pytest.param({"interval_days": 1}, "interval_days", "Cron jobs take no interval", id="cron-and-days"),
    pytest.param({"cron_expression": "every day at 2"}, "cron_expression", "5 fields", id="prose"),
    pytest.param({"cron_expression": "abc * * * *"}, "cron_expression", "Invalid cron", id="bad-token"),
    pytest.param({"cron_expression": "1,,2 * * * *"}, "cron_expression", "Invalid cron", id="empty-list-item"),
    pytest.param({"cron_expression": "*/0 * * * *"}, "cron_expression", "Invalid cron", id="zero-step"),
    pytest.param({"cron_expression": "* * * *"}, "cron_expression", "got 4", id="four-fields"),
    pytest.param({"cron_expression": "0 0 2 * * *"}, "cron_expression", "got 6", id="six-fields-seconds"),
    pytest.param({"cron_expression": "0 0 2 * * * 2026"}, "cron_expression", "got 7", id="seven-fields-year"),
    pytest.param({"cron_expression": "60 * * * *"}, "cron_expression", "out of range", id="minute-60"),
    pytest.param({"cron_expression": "0 24 * * *"}, "cron_expression", "out of range", id="hour-24"),
    pytest.param({"cron_expression": "0 0 0 * *"}, "cron_expression", "out of range", id="day-0"),
    pytest.param({"cron_expression": "0 0 32 * *"}, "cron_expression", "out of range", id="day-32"),
    pytest.param({"cron_expression": "0 0 * 13 *"}, "cron_expression", "out of range", id="month-13"),
    pytest.param({"cron_expression": "0 0 * * 8"}, "cron_expression", "out of range", id="weekday-8"),
    pytest.param({"cron_expression": "-1 * * * *"}, "cron_expression", "Invalid cron", id="negative"),
    pytest.param({"cron_expression": "0 ? * * *"}, "cron_expression", "standard cron", id="question-mark"),
    pytest.param({"cron_expression": "0 0 ? * MON"}, "cron_expression", "standard cron", id="quartz-question-mark"),
    pytest.param({"cron_expression": "H * * * *"}, "cron_expression", "hashed", id="jenkins-hash"),
    pytest.param({"cron_expression": "0 H(0-5) * * *"}, "cron_expression", "hashed", id="jenkins-hash-range"),
    pytest.param({"cron_expression": "R 2 * * *"}, "cron_expression", "random", id="random"),
    pytest.param({"cron_expression": "@reboot"}, "cron_expression", "Unknown cron macro", id="reboot-macro"),
    pytest.param({"cron_expression": "@every 5m"}, "cron_expression", "Unknown cron macro", id="every-macro"),
    pytest.param({"cron_expression": "0 0 30 2 *"}, "cron_expression", "never matches", id="feb-30"),
    pytest.param(
        {"cron_expression": "0 0 31 4,6,9,11 *"}, "cron_expression", "never matches", id="31st-of-short-months"
    ),
    pytest.param({"timezone": "Europe/Atlantis"}, "timezone", "Unknown timezone", id="unknown-timezone"),
]


@pytest.mark.parametrize("overrides, field, fragment", INTERVAL_REFUSALS)
def test_create_interval_job_refuses_bad_input_naming_the_field(overrides, field, fragment, announcements):
    before = ScheduledJob.objects.count()
    with pytest.raises(ValidationError) as exc:
        IntervalJobFactory(**overrides)
    assert field in errors_of(exc), errors_of(exc)
    assert fragment in " ".join(errors_of(exc)[field])
    assert ScheduledJob.objects.count() == before
    assert announcements == []


@pytest.mark.parametrize("overrides, field, fragment", CRON_REFUSALS)
def test_create_cron_job_refuses_bad_input_naming_the_field(overrides, field, fragment):
    before = ScheduledJob.objects.count()
    with pytest.raises(ValidationError) as exc:
        CronJobFactory(**overrides)
    assert field in errors_of(exc), errors_of(exc)
    assert fragment in " ".join(errors_of(exc)[field])
    assert ScheduledJob.objects.count() == before


def test_cron_job_with_an_unknown_timezone_reports_the_timezone_not_the_expression():
    with pytest.raises(ValidationError) as exc:
        CronJobFactory(cron_expression="0 2 * * *", timezone="Nowhere/Special")
    assert set(errors_of(exc)) == {"timezone"}


def test_every_offending_field_is_named_at_once():
    with pytest.raises(ValidationError) as exc:
        IntervalJobFactory(timezone="Nowhere", max_instances=0, misfire_grace_time=0, args={}, kwargs=[])
    assert {"timezone", "max_instances", "misfire_grace_time", "args", "kwargs"} <= set(errors_of(exc))


def test_neither_schedule_on_a_cron_job_is_refused():
    with pytest.raises(ValidationError) as exc:
        job_create(
            name="nothing",
            task_function=TaskFunction.objects.get(name="tasks.functions.noop"),
            job_type_id=JobType.CRON,
        )
    assert "cron_expression" in errors_of(exc)


def test_inactive_task_function_is_refused(retired_function):
    with pytest.raises(ValidationError) as exc:
        IntervalJobFactory(task_function=retired_function)
    assert "inactive" in " ".join(errors_of(exc)["task_function"])


def test_task_function_and_job_type_may_be_given_by_id(noop):
    job = job_create(name="by id", task_function_id=noop.pk, job_type_id=JobType.INTERVAL, interval_seconds=30)
    assert job.task_function == noop
    assert job.job_type_id == JobType.INTERVAL
    assert job.interval_total_seconds == 30


def test_job_type_given_as_model_instance(noop):
    job = job_create(
        name="type instance", task_function=noop, job_type=JobType.objects.get(pk=2), cron_expression="@hourly"
    )
    assert job.is_cron


def test_fields_outside_the_editable_set_are_refused(noop):
    with pytest.raises(TypeError, match="is_active"):
        IntervalJobFactory(is_active=False)
    with pytest.raises(TypeError, match="next_run_time"):
        IntervalJobFactory(next_run_time=T0)


# --- names -----------------------------------------------------------------------------------


def test_duplicate_active_name_is_refused():
    IntervalJobFactory(name="Nightly backup")
    with pytest.raises(ValidationError) as exc:
        CronJobFactory(name="Nightly backup")
    assert "already exists" in " ".join(errors_of(exc)["name"])


def test_name_is_trimmed_before_the_duplicate_check():
    IntervalJobFactory(name="Nightly backup")
    with pytest.raises(ValidationError) as exc:
        IntervalJobFactory(name="  Nightly backup ")
    assert "name" in errors_of(exc)


def test_built_in_cleanup_job_name_is_taken():
    assert ScheduledJob.objects.active().filter(name=BUILT_IN_JOB).exists()
    with pytest.raises(ValidationError) as exc:
        IntervalJobFactory(name=BUILT_IN_JOB)
    assert "name" in errors_of(exc)


def test_deleted_jobs_name_can_be_reused():
    old = IntervalJobFactory(name="Nightly backup")
    job_delete(old)
    new = IntervalJobFactory(name="Nightly backup")
    assert new.pk != old.pk
    assert ScheduledJob.objects.filter(name="Nightly backup").count() == 2
    assert list(ScheduledJob.objects.active().filter(name="Nightly backup")) == [new]


def test_rename_to_a_taken_name_is_refused_but_keeping_ones_own_name_is_fine():
    IntervalJobFactory(name="first")
    second = IntervalJobFactory(name="second")
    with pytest.raises(ValidationError) as exc:
        job_update(second, name="first")
    assert "name" in errors_of(exc)
    assert job_update(second, name="second", description="same name").description == "same name"


# --- what gets stored ------------------------------------------------------------------------


def test_create_stores_the_job_with_defaults(user, clock):
    job = IntervalJobFactory(name="  Reports  ", interval_minutes=5, user=user)
    job.refresh_from_db()
    assert job.name == "Reports"
    assert job.timezone == "UTC"
    assert job.args == [] and job.kwargs == {}
    assert (job.priority, job.max_instances, job.misfire_grace_time) == (0, 1, 60)
    assert job.coalesce is True and job.is_enabled is True and job.is_paused is False
    assert job.is_active is True
    assert job.created_by == user and job.updated_by == user
    assert job.created_at == T0


def test_anonymous_user_is_not_recorded():
    job = IntervalJobFactory(user=AnonymousUser())
    assert job.created_by is None and job.updated_by is None


def test_update_records_who_changed_it(user):
    job = IntervalJobFactory(user=user)
    other = UserFactory(username="other")
    job = job_update(job, description="changed", user=other)
    job.refresh_from_db()
    assert job.created_by == user
    assert job.updated_by == other


def test_args_and_kwargs_round_trip():
    job = IntervalJobFactory(args=[1, "two", None, {"x": [3]}], kwargs={"seconds": 5, "nested": {"a": True}})
    job.refresh_from_db()
    assert job.args == [1, "two", None, {"x": [3]}]
    assert job.kwargs == {"seconds": 5, "nested": {"a": True}}


def test_null_args_and_kwargs_become_empty():
    job = IntervalJobFactory(args=None, kwargs=None)
    job.refresh_from_db()
    assert job.args == [] and job.kwargs == {}


def test_cron_expression_is_stored_normalised():
    assert CronJobFactory(cron_expression="  0   2  * * *  ").cron_expression == "0 2 * * *"
    assert CronJobFactory(cron_expression="@DAILY").cron_expression == "@daily"


def test_cron_job_with_zero_intervals_is_accepted_and_stored_without_them():
    job = CronJobFactory(interval_seconds=0, interval_minutes=0, interval_hours=0, interval_days=0)
    job.refresh_from_db()
    assert [getattr(job, f) for f in ScheduledJob.INTERVAL_FIELDS] == [None, None, None, None]


@pytest.mark.parametrize("value", [1, 10])
def test_max_instances_bounds_are_accepted(value):
    assert IntervalJobFactory(max_instances=value).max_instances == value


def test_name_of_200_characters_and_grace_time_of_1_are_accepted():
    job = IntervalJobFactory(name="n" * 200, misfire_grace_time=1)
    assert len(job.name) == 200 and job.misfire_grace_time == 1


def test_interval_of_3650_days_is_accepted():
    job = IntervalJobFactory(interval_minutes=None, interval_days=3650)
    assert job.interval_total_seconds == 3650 * 86400


# --- next_run_time on create -----------------------------------------------------------------


def test_interval_job_first_runs_one_interval_after_creation(clock):
    assert IntervalJobFactory(interval_minutes=5).next_run_time == T0 + timedelta(minutes=5)


def test_interval_fields_add_up(clock):
    job = IntervalJobFactory(interval_seconds=30, interval_minutes=1, interval_hours=2, interval_days=1)
    assert job.next_run_time == T0 + timedelta(days=1, hours=2, minutes=1, seconds=30)
    assert job.interval_total_seconds == 86400 + 7200 + 60 + 30


@pytest.mark.parametrize(
    "zone, expected",
    [
        ("UTC", datetime(2026, 1, 6, 2, 0, tzinfo=UTC)),
        ("Europe/Paris", datetime(2026, 1, 6, 1, 0, tzinfo=UTC)),  # CET, UTC+1
        ("America/New_York", datetime(2026, 1, 6, 7, 0, tzinfo=UTC)),  # EST, UTC-5
        ("Asia/Tokyo", datetime(2026, 1, 5, 17, 0, tzinfo=UTC)),  # 02:00 JST on the 6th
        ("Asia/Kolkata", datetime(2026, 1, 5, 20, 30, tzinfo=UTC)),  # UTC+5:30
    ],
)
def test_cron_job_first_runs_at_the_next_cron_time_in_its_timezone(clock, zone, expected):
    job = CronJobFactory(cron_expression="0 2 * * *", timezone=zone)
    assert job.next_run_time == expected
    job.refresh_from_db()
    assert job.next_run_time == expected


def test_cron_job_created_on_a_fire_time_runs_at_the_following_one(clock):
    clock.set(datetime(2026, 1, 6, 2, 0, tzinfo=UTC))
    assert CronJobFactory(cron_expression="0 2 * * *").next_run_time == datetime(2026, 1, 7, 2, 0, tzinfo=UTC)


def test_job_created_disabled_has_no_next_run(clock):
    assert IntervalJobFactory(is_enabled=False).next_run_time is None
    assert CronJobFactory(is_enabled=False).next_run_time is None


# --- update ----------------------------------------------------------------------------------


def test_changed_interval_restarts_from_now(clock):
    job = IntervalJobFactory(interval_minutes=5)
    clock.advance(minutes=2)
    job = job_update(job, interval_minutes=10)
    assert job.next_run_time == T0 + timedelta(minutes=12)
    job.refresh_from_db()
    assert job.next_run_time == T0 + timedelta(minutes=12)


def test_changed_cron_expression_recomputes_next_run(clock):
    job = CronJobFactory(cron_expression="0 2 * * *")
    job = job_update(job, cron_expression="30 14 * * *")
    assert job.next_run_time == datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


def test_changed_timezone_recomputes_next_run_in_the_new_zone(clock):
    job = CronJobFactory(cron_expression="0 2 * * *", timezone="UTC")
    job = job_update(job, timezone="America/New_York")
    assert job.next_run_time == datetime(2026, 1, 6, 7, 0, tzinfo=UTC)


def test_change_from_interval_to_cron(clock):
    job = IntervalJobFactory(interval_minutes=5)
    job = job_update(job, job_type_id=JobType.CRON, interval_minutes=None, cron_expression="0 18 * * *")
    job.refresh_from_db()
    assert job.is_cron and job.interval_minutes is None
    assert job.next_run_time == datetime(2026, 1, 5, 18, 0, tzinfo=UTC)


def test_change_from_cron_to_interval(clock):
    job = CronJobFactory()
    job = job_update(job, job_type_id=JobType.INTERVAL, cron_expression=None, interval_hours=1)
    job.refresh_from_db()
    assert job.is_interval and job.cron_expression is None
    assert job.next_run_time == T0 + timedelta(hours=1)


def test_change_of_type_that_leaves_the_old_schedule_is_refused():
    job = IntervalJobFactory(interval_minutes=5)
    with pytest.raises(ValidationError) as exc:
        job_update(job, job_type_id=JobType.CRON, cron_expression="0 18 * * *")
    assert "interval_minutes" in errors_of(exc)
    job.refresh_from_db()
    assert job.is_interval and job.cron_expression is None


@pytest.mark.parametrize(
    "fields",
    [
        {"description": "now documented"},
        {"name": "renamed"},
        {"priority": 5, "max_instances": 3, "misfire_grace_time": 600, "coalesce": False},
        {"args": [1], "kwargs": {"x": 1}},
        {"interval_minutes": 5},  # the same schedule, sent again
    ],
)
def test_edit_that_leaves_the_schedule_alone_keeps_next_run(clock, fields):
    job = IntervalJobFactory(interval_minutes=5)
    clock.advance(minutes=3)
    job = job_update(job, **fields)
    job.refresh_from_db()
    assert job.next_run_time == T0 + timedelta(minutes=5)


def test_reformatted_cron_expression_is_not_a_schedule_change(clock):
    job = CronJobFactory(cron_expression="0 2 * * *")
    first = job.next_run_time
    clock.advance(days=3)  # the stored run is overdue; a restart would move it
    job = job_update(job, cron_expression=" 0   2 * * * ")
    assert job.next_run_time == first


def test_update_to_disabled_clears_next_run_and_re_enable_starts_fresh(clock):
    job = IntervalJobFactory(interval_minutes=5)
    job = job_update(job, is_enabled=False)
    assert job.next_run_time is None
    clock.advance(minutes=17)
    job = job_update(job, is_enabled=True)
    assert job.next_run_time == T0 + timedelta(minutes=22)


def test_schedule_change_on_a_disabled_job_keeps_it_off_the_schedule(clock):
    job = job_disable(IntervalJobFactory())
    job = job_update(job, interval_minutes=1)
    assert job.next_run_time is None


def test_schedule_change_on_a_paused_job_keeps_it_paused(clock):
    job = job_pause(IntervalJobFactory(interval_minutes=5), reason="maintenance")
    clock.advance(minutes=1)
    job = job_update(job, interval_minutes=10)
    job.refresh_from_db()
    assert job.is_paused and job.pause_reason == "maintenance"
    assert job.next_run_time == T0 + timedelta(minutes=11)


def test_refused_update_changes_nothing(clock):
    job = IntervalJobFactory(interval_minutes=5, description="before")
    with pytest.raises(ValidationError) as exc:
        job_update(job, description="after", interval_minutes=0, max_instances=99)
    assert {"interval_seconds", "max_instances"} <= set(errors_of(exc))
    job.refresh_from_db()
    assert (job.description, job.interval_minutes, job.max_instances) == ("before", 5, 1)


def test_job_on_a_retired_function_can_still_be_edited_but_not_moved_to_another_retired_one(retired_function):
    job = IntervalJobFactory()
    TaskFunction.objects.filter(pk=job.task_function_id).update(is_active=False)
    job = job_update(job, description="still editable")
    assert job.description == "still editable"
    with pytest.raises(ValidationError) as exc:
        job_update(job, task_function=retired_function)
    assert "task_function" in errors_of(exc)


def test_update_to_an_active_task_function(noop):
    echo = TaskFunction.objects.get(name="tasks.functions.echo")
    job = job_update(IntervalJobFactory(task_function=noop), task_function=echo)
    job.refresh_from_db()
    assert job.task_function == echo


def test_update_works_from_a_stale_copy(clock):
    job = IntervalJobFactory(interval_minutes=5)
    stale = ScheduledJob.objects.get(pk=job.pk)
    job_update(job, description="first edit")
    updated = job_update(stale, priority=3)
    assert (updated.description, updated.priority) == ("first edit", 3)


# --- pause / resume --------------------------------------------------------------------------


def test_pause_keeps_the_job_scheduled_but_stops_it_firing(clock):
    job = IntervalJobFactory(interval_minutes=5)
    job = job_pause(job, reason="  disk full  ")
    job.refresh_from_db()
    assert job.is_paused and job.pause_reason == "disk full"
    assert job.next_run_time == T0 + timedelta(minutes=5)
    assert ScheduledJob.objects.active().filter(pk=job.pk).exists()
    assert not ScheduledJob.objects.schedulable().filter(pk=job.pk).exists()
    assert not ScheduledJob.objects.due(now=T0 + timedelta(hours=1)).filter(pk=job.pk).exists()


def test_resume_continues_on_the_interval_grid_without_catch_up(clock):
    job = IntervalJobFactory(interval_minutes=5)  # grid: T0+5, T0+10, ...
    clock.advance(minutes=1)
    job = job_pause(job)
    clock.advance(minutes=16)  # T0+17: the runs at +5, +10, +15 were paused over
    job = job_resume(job)
    job.refresh_from_db()
    assert not job.is_paused and job.pause_reason == ""
    assert job.next_run_time == T0 + timedelta(minutes=20)
    assert ScheduledJob.objects.due(now=clock.now).filter(pk=job.pk).count() == 0
    assert not job.executions.exists()


def test_resume_before_the_next_run_keeps_it(clock):
    job = job_pause(IntervalJobFactory(interval_minutes=5))
    clock.advance(minutes=3)
    assert job_resume(job).next_run_time == T0 + timedelta(minutes=5)


def test_resume_exactly_on_a_grid_point_moves_to_the_next_one(clock):
    job = job_pause(IntervalJobFactory(interval_minutes=5))
    clock.advance(minutes=10)
    assert job_resume(job).next_run_time == T0 + timedelta(minutes=15)


def test_resume_cron_job_runs_at_the_next_cron_time_after_now(clock):
    job = CronJobFactory(cron_expression="0 * * * *")
    assert job.next_run_time == datetime(2026, 1, 5, 13, 0, tzinfo=UTC)
    job = job_pause(job)
    clock.set(datetime(2026, 1, 5, 15, 30, tzinfo=UTC))
    assert job_resume(job).next_run_time == datetime(2026, 1, 5, 16, 0, tzinfo=UTC)


def test_resume_of_a_disabled_job_leaves_it_off_the_schedule(clock):
    job = job_disable(job_pause(IntervalJobFactory()))
    job = job_resume(job)
    assert not job.is_paused and job.next_run_time is None


# --- enable / disable ------------------------------------------------------------------------


def test_disable_takes_the_job_off_the_schedule(clock):
    job = job_disable(IntervalJobFactory())
    job.refresh_from_db()
    assert not job.is_enabled and job.next_run_time is None
    assert ScheduledJob.objects.active().filter(pk=job.pk).exists()
    assert not ScheduledJob.objects.schedulable().filter(pk=job.pk).exists()


def test_enable_gives_a_fresh_next_run_from_now(clock):
    job = job_disable(IntervalJobFactory(interval_minutes=5))
    clock.advance(minutes=17)
    job = job_enable(job)
    job.refresh_from_db()
    assert job.is_enabled
    assert job.next_run_time == T0 + timedelta(minutes=22)  # a new anchor, not the old grid


def test_enable_cron_job_runs_at_the_next_cron_time(clock):
    job = job_disable(CronJobFactory(cron_expression="0 2 * * *", timezone="Europe/Paris"))
    clock.set(datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    assert job_enable(job).next_run_time == datetime(2026, 7, 2, 0, 0, tzinfo=UTC)  # 02:00 CEST


def test_enable_of_an_enabled_job_keeps_its_next_run(clock):
    job = IntervalJobFactory(interval_minutes=5)
    clock.advance(minutes=3)
    assert job_enable(job).next_run_time == T0 + timedelta(minutes=5)


def test_enable_of_a_paused_job_leaves_it_paused(clock):
    job = job_disable(job_pause(IntervalJobFactory()))
    job = job_enable(job)
    assert job.is_enabled and job.is_paused and job.next_run_time is not None


# --- delete ----------------------------------------------------------------------------------


def test_delete_is_soft_and_keeps_history(user):
    job = IntervalJobFactory()
    ran = ExecutionFactory(job=job, status=ExecutionStatus.SUCCESS)
    count = ScheduledJob.objects.count()
    job_delete(job, user=user)
    assert job.is_active is False and job.next_run_time is None
    assert ScheduledJob.objects.count() == count
    row = ScheduledJob.objects.get(pk=job.pk)
    assert not row.is_active and row.next_run_time is None and row.updated_by == user
    assert not ScheduledJob.objects.active().filter(pk=job.pk).exists()
    assert not ScheduledJob.objects.schedulable().filter(pk=job.pk).exists()
    assert list(JobExecution.objects.filter(job=row)) == [ran]


ACTIONS_ON_DELETED = [
    pytest.param(lambda job: job_update(job, description="x"), id="update"),
    pytest.param(job_delete, id="delete"),
    pytest.param(job_pause, id="pause"),
    pytest.param(job_resume, id="resume"),
    pytest.param(job_enable, id="enable"),
    pytest.param(job_disable, id="disable"),
    pytest.param(job_trigger, id="trigger"),
]


@pytest.mark.parametrize("action", ACTIONS_ON_DELETED)
def test_actions_on_a_deleted_job_are_refused(action):
    job = IntervalJobFactory()
    job_delete(job)
    with pytest.raises(ValidationError) as exc:
        action(job)
    assert "deleted" in " ".join(errors_of(exc)["job"])
    row = ScheduledJob.objects.get(pk=job.pk)
    assert not row.is_active and row.next_run_time is None
    assert not row.executions.exists()


@pytest.mark.parametrize("action", ACTIONS_ON_DELETED)
def test_actions_on_a_stale_copy_of_a_deleted_job_are_refused(action):
    job = IntervalJobFactory()
    stale = ScheduledJob.objects.get(pk=job.pk)
    job_delete(job)
    with pytest.raises(ValidationError) as exc:
        action(stale)
    assert "job" in errors_of(exc)
    row = ScheduledJob.objects.get(pk=job.pk)
    assert not row.is_active and row.next_run_time is None
    assert not row.executions.exists()


# --- trigger ---------------------------------------------------------------------------------


def test_trigger_records_a_pending_manual_run_with_who_asked(clock, user):
    job = IntervalJobFactory()
    execution = job_trigger(job, user=user)
    execution.refresh_from_db()
    assert execution.job == job
    assert execution.status == ExecutionStatus.PENDING
    assert execution.trigger == ExecutionTrigger.MANUAL
    assert execution.triggered_by == user
    assert execution.scheduled_time == T0
    assert execution.started_at is None and execution.instance_id == ""
    assert list(job.executions.all()) == [execution]


def test_trigger_does_not_move_the_schedule(clock):
    job = IntervalJobFactory(interval_minutes=5)
    job_trigger(job)
    job.refresh_from_db()
    assert job.next_run_time == T0 + timedelta(minutes=5)
    assert job.last_run_time is None


def test_trigger_twice_at_the_same_instant_records_two_runs(clock):
    job = IntervalJobFactory()
    first, second = job_trigger(job), job_trigger(job)
    assert first.pk != second.pk
    assert job.executions.filter(trigger=ExecutionTrigger.MANUAL, scheduled_time=T0).count() == 2


def test_trigger_by_anonymous_records_no_user():
    assert job_trigger(IntervalJobFactory(), user=AnonymousUser()).triggered_by is None


def test_trigger_refuses_a_job_whose_task_function_is_inactive():
    job = IntervalJobFactory()
    TaskFunction.objects.filter(pk=job.task_function_id).update(is_active=False)
    job = ScheduledJob.objects.get(pk=job.pk)
    with pytest.raises(ValidationError) as exc:
        job_trigger(job)
    assert "inactive" in " ".join(errors_of(exc)["task_function"])
    assert not job.executions.exists()


def test_trigger_checks_the_task_function_as_it_is_now():
    job = IntervalJobFactory()
    assert job.task_function.is_active  # a copy loaded before the function was retired
    TaskFunction.objects.filter(pk=job.task_function_id).update(is_active=False)
    with pytest.raises(ValidationError) as exc:
        job_trigger(job)
    assert "task_function" in errors_of(exc)
    assert not JobExecution.objects.filter(job_id=job.pk).exists()


# --- announcements after commit --------------------------------------------------------------


ANNOUNCED_ACTIONS = [
    pytest.param(lambda job: job_update(job, description="x"), id="update"),
    pytest.param(job_delete, id="delete"),
    pytest.param(job_pause, id="pause"),
    pytest.param(job_resume, id="resume"),
    pytest.param(job_enable, id="enable"),
    pytest.param(job_disable, id="disable"),
]


def test_create_is_announced_after_commit(django_capture_on_commit_callbacks, announcements):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = IntervalJobFactory()
        assert announcements == []  # nothing is said before the transaction commits
    assert len(callbacks) == 1
    assert announcements == [(job.pk, None)]


@pytest.mark.parametrize("action", ANNOUNCED_ACTIONS)
def test_each_change_is_announced_once_after_commit(django_capture_on_commit_callbacks, announcements, action):
    job = IntervalJobFactory()
    announcements.clear()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        action(job)
        assert announcements == []
    assert len(callbacks) == 1
    assert announcements == [(job.pk, None)]


def test_trigger_is_announced_with_its_execution(django_capture_on_commit_callbacks, announcements):
    job = IntervalJobFactory()
    announcements.clear()
    with django_capture_on_commit_callbacks(execute=True):
        execution = job_trigger(job)
        assert announcements == []
    assert announcements == [(job.pk, execution.pk)]


def test_refused_changes_are_not_announced(django_capture_on_commit_callbacks, announcements):
    job = IntervalJobFactory()
    announcements.clear()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(ValidationError):
            job_update(job, max_instances=0)
        with pytest.raises(ValidationError):
            IntervalJobFactory(timezone="Nowhere")
    assert callbacks == [] and announcements == []


def test_changes_rolled_back_with_the_callers_transaction_are_not_announced(
    django_capture_on_commit_callbacks, announcements
):
    job = IntervalJobFactory()
    announcements.clear()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                job_pause(job)
                job_trigger(job)
                raise RuntimeError("caller gave up")
    assert callbacks == [] and announcements == []
    job.refresh_from_db()
    assert not job.is_paused and not job.executions.exists()


# --- schedule in words and upcoming runs ------------------------------------------------------


def test_schedule_described_in_words():
    assert job_schedule_describe(IntervalJobFactory(interval_minutes=5)) == "every 5 minutes"
    assert job_schedule_describe(IntervalJobFactory(interval_minutes=None, interval_hours=1)) == "every hour"
    assert job_schedule_describe(CronJobFactory(cron_expression="0 2 * * 0")) == "At 02:00, only on Sunday"
    paris = CronJobFactory(cron_expression="0 2 * * 0", timezone="Europe/Paris")
    assert job_schedule_describe(paris) == "At 02:00, only on Sunday (Europe/Paris)"


def test_upcoming_fire_times_of_an_interval_job_follow_its_grid(clock):
    job = IntervalJobFactory(interval_minutes=5)
    assert job_upcoming_fire_times(job, count=3) == [T0 + timedelta(minutes=m) for m in (5, 10, 15)]


def test_upcoming_fire_times_of_a_cron_job_match_the_engines_arithmetic(clock):
    clock.set(datetime(2026, 10, 30, 12, 0, tzinfo=UTC))
    job = CronJobFactory(cron_expression="30 1 * * *", timezone="America/New_York")
    assert job.next_run_time == datetime(2026, 10, 31, 5, 30, tzinfo=UTC)
    upcoming = job_upcoming_fire_times(job, count=4)
    assert upcoming[0] == job.next_run_time
    assert upcoming == [
        job.next_run_time,
        *cron_next_fire_times(job.cron_expression, job.timezone, job.next_run_time, 3),
    ]
    # 01:30 on 1 November happens twice in New York; it is shown (and runs) once.
    assert sum(1 for t in upcoming if t.date() == datetime(2026, 11, 1).date()) == 1


def test_upcoming_fire_times_of_an_unsaved_job_start_from_now(noop):
    job = ScheduledJob(job_type_id=JobType.CRON, cron_expression="0 12 * * 1-5", timezone="UTC", task_function=noop)
    now = datetime(2026, 1, 9, 13, 0, tzinfo=UTC)  # a Friday afternoon
    assert job_upcoming_fire_times(job, count=2, now=now) == [
        datetime(2026, 1, 12, 12, 0, tzinfo=UTC),
        datetime(2026, 1, 13, 12, 0, tzinfo=UTC),
    ]


def test_shortened_interval_runs_at_once_when_the_last_run_is_older_than_the_new_interval(clock):
    job = IntervalJobFactory(interval_minutes=None, interval_hours=1)
    ScheduledJob.objects.filter(pk=job.pk).update(last_run_time=T0 - timedelta(minutes=30))
    job = job_update(job, interval_hours=None, interval_seconds=1)
    assert job.next_run_time == T0


def test_lengthened_interval_counts_from_the_last_run(clock):
    job = IntervalJobFactory(interval_minutes=None, interval_seconds=10)
    ScheduledJob.objects.filter(pk=job.pk).update(last_run_time=T0 - timedelta(seconds=5))
    job = job_update(job, interval_seconds=None, interval_minutes=1)
    assert job.next_run_time == T0 - timedelta(seconds=5) + timedelta(minutes=1)

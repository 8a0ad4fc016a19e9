"""When a job runs, on a controllable clock: windows, jitter, max runs, one-off date jobs and
calendars, through the same Schedule and claim as the engine."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from scheduler.enums import ChangeSource
from scheduler.models import Calendar, ExecutionStatus, JobAuditEntry, JobExecution, JobType, ScheduledJob
from scheduler.services.calendars import calendar_dates_parse, calendar_save
from scheduler.services.claims import runs_claim
from scheduler.services.executions import execution_finish, execution_start
from scheduler.services.jobs import job_create, job_disable, job_enable, job_pause, job_resume, job_update
from scheduler.services.schedules import (
    MAX_SKIPPED_DAYS,
    Schedule,
    ScheduleEnded,
    SkipDates,
    jitter_delay,
    job_planned_starts,
    job_preview_fire_times,
    job_upcoming_fire_times,
)
from tests.factories import CronJobFactory, IntervalJobFactory

pytestmark = pytest.mark.django_db
A = "instance-a"
PENDING, MISSED, SKIPPED = ExecutionStatus.PENDING, ExecutionStatus.MISSED, ExecutionStatus.SKIPPED


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


T0 = utc(2026, 1, 5, 12, 0)  # a Monday


@pytest.fixture(autouse=True)
def only_test_jobs(db, clock):
    ScheduledJob.objects.update(is_enabled=False, next_run_time=None)


def claim(now):
    return runs_claim(instance_id=A, now=now)


def finish(run):
    execution = JobExecution.objects.get(pk=run.execution_id)
    execution_finish(execution_start(execution, instance_id=A))


def runs_of(job):
    return list(JobExecution.objects.filter(job=job).order_by("scheduled_time", "pk"))


# --- windows -----------------------------------------------------------------------------------


def test_a_window_bounds_the_fire_times_of_a_cron_job_in_the_engine_and_the_preview(clock):
    job = CronJobFactory(cron_expression="0 9 * * *", start_at=utc(2026, 1, 7, 9), end_at=utc(2026, 1, 9, 9))
    assert job.next_run_time == utc(2026, 1, 7, 9)  # the first at or after startAt
    assert job_upcoming_fire_times(job, 5) == [utc(2026, 1, 7, 9), utc(2026, 1, 8, 9), utc(2026, 1, 9, 9)]
    fired = []
    for day in (7, 8, 9):
        clock.set(utc(2026, 1, day, 9))
        [run] = claim(clock.now)
        fired.append(run.scheduled_time)
        finish(run)
    assert fired == [utc(2026, 1, 7, 9), utc(2026, 1, 8, 9), utc(2026, 1, 9, 9)]
    job.refresh_from_db()
    assert (job.next_run_time, job.is_enabled) == (None, False)
    assert job.disabled_reason == "ended: no fire time after its end at 2026-01-09T09:00:00+00:00"
    clock.set(utc(2026, 1, 10, 9))
    assert claim(clock.now) == []
    with pytest.raises(ValidationError) as exc:
        job_enable(job)
    assert "move endAt" in exc.value.message_dict["end_at"][0]
    job = job_update(job, end_at=utc(2026, 1, 20, 9), is_enabled=True)
    assert job.next_run_time == utc(2026, 1, 11, 9) and job.disabled_reason == ""


def test_an_interval_job_starting_later_runs_on_a_grid_from_its_start(clock):
    job = IntervalJobFactory(interval_minutes=10, start_at=T0 + timedelta(hours=2))
    assert job_upcoming_fire_times(job, 3) == [T0 + timedelta(hours=2, minutes=m) for m in (0, 10, 20)]


def test_a_window_that_has_ended_is_refused_on_create_naming_end_at(clock):
    with pytest.raises(ValidationError) as exc:
        CronJobFactory(start_at=T0 - timedelta(days=3), end_at=T0 - timedelta(days=1))
    assert "end_at" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        CronJobFactory(start_at=T0 + timedelta(days=3), end_at=T0 + timedelta(days=1))
    assert exc.value.message_dict["end_at"] == ["endAt must be after startAt."]


def test_resume_after_the_window_ended_disables_the_job_with_the_reason(clock):
    job = IntervalJobFactory(interval_minutes=5, end_at=T0 + timedelta(minutes=12))
    job_pause(job)
    clock.advance(hours=1)
    job = job_resume(job)
    assert (job.is_enabled, job.next_run_time) == (False, None)
    assert job.disabled_reason.startswith("ended: no fire time after its end at")


# --- jitter ------------------------------------------------------------------------------------


def test_jitter_is_deterministic_and_never_reaches_the_next_fire_time():
    first = jitter_delay(7, T0, 30, T0 + timedelta(minutes=1))
    assert first == jitter_delay(7, T0, 30, T0 + timedelta(minutes=1))
    assert timedelta(0) <= first < timedelta(seconds=30)
    delays = {jitter_delay(7, T0 + timedelta(minutes=m), 30, None) for m in range(50)}
    assert len(delays) > 40  # spread, not one value
    # Bounded by the next fire time when it comes before the jitter runs out.
    assert all(jitter_delay(job, T0, 3600, T0 + timedelta(seconds=2)) < timedelta(seconds=2) for job in range(200))
    assert jitter_delay(7, T0, 0, None) == timedelta(0)


def test_jitter_delays_the_start_the_engine_and_the_preview_agree_and_lateness_counts_from_it(clock):
    job = CronJobFactory(cron_expression="0 * * * *", jitter_seconds=600, misfire_grace_time=5)
    fire_times = job_upcoming_fire_times(job, 3)
    starts = job_planned_starts(job, fire_times)
    assert job.next_run_time == utc(2026, 1, 5, 13) == fire_times[0]
    assert job.next_start_at == starts[0] and starts[0] > fire_times[0]
    assert all(timedelta(0) <= s - t < timedelta(seconds=600) for s, t in zip(starts, fire_times))
    clock.set(fire_times[0])
    assert claim(clock.now) == []  # the fire time came, its start has not
    clock.set(starts[0] + timedelta(seconds=3))  # 3 s after the planned start: within the 5 s grace
    [run] = claim(clock.now)
    execution = JobExecution.objects.get(pk=run.execution_id)
    assert (execution.scheduled_time, execution.planned_start) == (fire_times[0], starts[0])
    job.refresh_from_db()
    assert (job.next_run_time, job.next_start_at) == (fire_times[1], starts[1])
    clock.set(starts[1] + timedelta(seconds=6))
    claim(clock.now)
    missed = JobExecution.objects.get(job=job, scheduled_time=fire_times[1])
    assert missed.status == MISSED and "6.0s late" in missed.error_message


def test_a_job_without_jitter_has_no_next_start_and_its_runs_no_planned_start(clock):
    job = IntervalJobFactory(interval_minutes=5)
    assert job.next_start_at is None
    clock.set(job.next_run_time)
    [run] = claim(clock.now)
    assert JobExecution.objects.get(pk=run.execution_id).planned_start is None


def test_jitter_not_shorter_than_the_interval_is_refused_naming_it(clock):
    with pytest.raises(ValidationError) as exc:
        IntervalJobFactory(interval_minutes=None, interval_seconds=30, jitter_seconds=30)
    assert "shorter than the interval" in exc.value.message_dict["jitter_seconds"][0]


def test_changing_the_jitter_moves_the_next_start_only(clock):
    job = IntervalJobFactory(interval_minutes=5)
    nominal = job.next_run_time
    job = job_update(job, jitter_seconds=60)
    assert job.next_run_time == nominal and nominal <= job.next_start_at < nominal + timedelta(seconds=60)
    job = job_update(job, jitter_seconds=0)
    assert (job.next_run_time, job.next_start_at) == (nominal, None)


def test_a_preview_from_a_moment_lists_planned_starts_that_the_engine_then_uses(clock):
    job = CronJobFactory(cron_expression="*/15 * * * *", jitter_seconds=120)
    after = utc(2026, 1, 6, 0, 0)
    times = job_preview_fire_times(job, count=4, after=after)
    assert times == [utc(2026, 1, 6, 0, m) for m in (15, 30, 45)] + [utc(2026, 1, 6, 1)]
    schedule = Schedule.of(job)
    starts = job_planned_starts(job, times)
    assert starts[0] == times[0] + jitter_delay(job.pk, times[0], 120, schedule.following(times[0]))


# --- max runs ----------------------------------------------------------------------------------


def test_max_runs_counts_the_scheduled_runs_admitted_and_then_disables_the_job(clock, user):
    job = IntervalJobFactory(interval_minutes=5, max_runs=3)
    assert job.remaining_runs == 3
    first = job.next_run_time
    for i in range(3):
        clock.set(first + timedelta(minutes=5 * i))
        [run] = claim(clock.now)
        finish(run)
    job.refresh_from_db()
    assert (job.scheduled_runs, job.remaining_runs, job.is_enabled, job.next_run_time) == (3, 0, False, None)
    assert job.disabled_reason == "completed 3 runs"
    clock.advance(minutes=5)
    assert claim(clock.now) == []
    with pytest.raises(ValidationError) as exc:
        job_enable(job)
    assert "raise maxRuns" in exc.value.message_dict["max_runs"][0]
    job = job_update(job, max_runs=4, is_enabled=True)
    assert job.is_enabled and job.remaining_runs == 1


def test_skipped_runs_do_not_count_against_max_runs_and_a_claim_admits_no_more_than_remain(clock):
    job = IntervalJobFactory(interval_minutes=5, max_runs=2, coalesce=False, misfire_grace_time=3600)
    first = job.next_run_time
    clock.set(first)
    [run] = claim(clock.now)  # in progress: the next fire time is skipped (max_instances 1)
    clock.set(first + timedelta(minutes=5))
    assert claim(clock.now) == []
    assert JobExecution.objects.get(job=job, scheduled_time=clock.now).status == SKIPPED
    job.refresh_from_db()
    assert job.scheduled_runs == 1
    finish(run)
    job_update(job, max_instances=5)
    clock.set(first + timedelta(minutes=25))  # four fire times overdue, one run left
    claimed = claim(clock.now)
    assert len(claimed) == 1
    job.refresh_from_db()
    assert (job.scheduled_runs, job.is_enabled, job.disabled_reason) == (2, False, "completed 2 runs")


# --- date jobs ---------------------------------------------------------------------------------


def date_job(run_at, **fields):
    fields.setdefault("interval_minutes", None)
    return IntervalJobFactory(job_type_id=JobType.DATE, run_at=run_at, **fields)


def test_a_date_job_runs_once_at_its_moment_and_is_then_done(clock):
    job = date_job(T0 + timedelta(hours=1))
    assert job.next_run_time == T0 + timedelta(hours=1)
    assert job_upcoming_fire_times(job, 5) == [T0 + timedelta(hours=1)]
    clock.set(T0 + timedelta(hours=1, seconds=2))
    [run] = claim(clock.now)
    assert run.scheduled_time == T0 + timedelta(hours=1)
    job.refresh_from_db()
    assert (job.next_run_time, job.is_enabled) == (None, False)
    assert job.disabled_reason == "done: ran once at 2026-01-05T13:00:00+00:00"
    clock.advance(days=1)
    assert claim(clock.now) == []
    assert len(runs_of(job)) == 1
    with pytest.raises(ValidationError) as exc:
        job_enable(job)
    assert "move runAt" in exc.value.message_dict["run_at"][0]


def test_a_date_job_claimed_after_its_grace_time_is_missed_and_done(clock):
    job = date_job(T0 + timedelta(minutes=1), misfire_grace_time=30)
    clock.set(T0 + timedelta(minutes=10))
    assert claim(clock.now) == []
    [missed] = runs_of(job)
    assert missed.status == MISSED
    job.refresh_from_db()
    assert job.disabled_reason == "done: its one fire time, 2026-01-05T12:01:00+00:00, was missed"


def test_a_date_job_whose_fire_time_is_restored_never_runs_twice(clock):
    job = date_job(T0 + timedelta(minutes=1))
    clock.set(T0 + timedelta(minutes=1))
    [run] = claim(clock.now)
    finish(run)
    # As after a restore of an old copy of the jobs table: the same moment is due again.
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=T0 + timedelta(minutes=1), is_enabled=True)
    assert claim(clock.now) == []
    assert len(runs_of(job)) == 1


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"run_at": None}, "run_at"),
        ({"cron_expression": "0 2 * * *"}, "cron_expression"),
        ({"interval_minutes": 5}, "interval_minutes"),
        ({"end_at": T0 + timedelta(days=1)}, "end_at"),
        ({"max_runs": 2}, "max_runs"),
        ({"run_at": T0 - timedelta(hours=1)}, "run_at"),
    ],
)
def test_date_job_refusals_name_the_field(clock, fields, field):
    with pytest.raises(ValidationError) as exc:
        date_job(fields.pop("run_at", T0 + timedelta(hours=1)), **fields)
    assert field in exc.value.message_dict, exc.value.message_dict


def test_run_at_on_a_cron_job_is_refused_naming_it(clock):
    with pytest.raises(ValidationError) as exc:
        CronJobFactory(run_at=T0 + timedelta(hours=1))
    assert "date job" in exc.value.message_dict["run_at"][0]


# --- calendars ---------------------------------------------------------------------------------


def test_calendar_dates_are_parsed_sorted_and_refused_naming_the_bad_one():
    assert calendar_dates_parse("2026-12-25\n\n2026-01-01\n2026-12-25\n") == ["2026-01-01", "2026-12-25"]
    with pytest.raises(ValidationError) as exc:
        calendar_dates_parse(["2026-02-30"])
    assert "'2026-02-30' is not a date" in exc.value.message_dict["dates"][0]


def holidays(*dates, zone="Europe/Paris"):
    return calendar_save(name=f"holidays {zone}", timezone=zone, dates=list(dates))


def test_weekdays_except_public_holidays_in_the_calendars_zone(clock):
    calendar = holidays("2026-01-06", "2026-01-08", zone="Europe/Paris")
    # 23:30 UTC is 00:30 the next day in Paris: the listed date is read in the calendar's zone.
    job = CronJobFactory(cron_expression="30 23 * * 1-5", timezone="UTC", exclude_calendar=calendar)
    times = job_upcoming_fire_times(job, 4)
    # Mon 5 Jan 23:30 UTC is Tue 6 Jan in Paris (listed), Wed 7 Jan 23:30 is Thu 8 there (listed).
    assert times == [
        utc(2026, 1, 6, 23, 30),
        utc(2026, 1, 8, 23, 30),
        utc(2026, 1, 9, 23, 30),
        utc(2026, 1, 12, 23, 30),
    ]
    assert job.next_run_time == times[0]
    clock.set(times[0])
    [run] = claim(clock.now)
    job.refresh_from_db()
    assert job.next_run_time == times[1]


def test_an_interval_job_skips_a_listed_day_in_one_step():
    schedule = Schedule(None, "UTC", 1, skip=SkipDates("UTC", frozenset({utc(2026, 1, 6).date()})), bounded=True)
    assert schedule.following(utc(2026, 1, 5, 23, 59, 59)) == utc(2026, 1, 7)


def test_a_calendar_listing_every_day_leaves_no_next_fire_time():
    days = frozenset((utc(2026, 1, 1) + timedelta(days=i)).date() for i in range(MAX_SKIPPED_DAYS + 10))
    schedule = Schedule("0 9 * * *", "UTC", 0, skip=SkipDates("UTC", days), bounded=True)
    with pytest.raises(ValueError, match="falls on a date of its calendar") as exc:
        schedule.following(utc(2025, 12, 31, 9))
    assert not isinstance(exc.value, ScheduleEnded)


def test_a_date_added_after_the_next_run_was_computed_is_dropped_at_the_claim(clock):
    calendar = holidays(zone="UTC")
    job = CronJobFactory(cron_expression="0 9 * * *", exclude_calendar=calendar)
    assert job.next_run_time == utc(2026, 1, 6, 9)
    # Written behind the service's back: the claim itself must drop the listed date.
    Calendar.objects.filter(pk=calendar.pk).update(dates=["2026-01-06"])
    clock.set(utc(2026, 1, 6, 9))
    assert claim(clock.now) == []
    assert runs_of(job) == []
    job.refresh_from_db()
    assert job.next_run_time == utc(2026, 1, 7, 9)


def test_saving_a_calendar_moves_the_next_run_of_its_jobs(clock, announcements, django_capture_on_commit_callbacks):
    calendar = holidays(zone="UTC")
    job = CronJobFactory(cron_expression="0 9 * * *", exclude_calendar=calendar)
    other = CronJobFactory(cron_expression="0 9 * * *")
    with django_capture_on_commit_callbacks(execute=True):
        calendar_save(calendar, dates=["2026-01-06", "2026-01-07"])
    job.refresh_from_db(), other.refresh_from_db()
    assert job.next_run_time == utc(2026, 1, 8, 9) and other.next_run_time == utc(2026, 1, 6, 9)
    calendar_save(calendar, dates=[])
    job.refresh_from_db()
    assert job.next_run_time == utc(2026, 1, 6, 9)
    assert announcements


def test_an_unknown_calendar_is_refused_naming_it(clock):
    with pytest.raises(ValidationError) as exc:
        CronJobFactory(exclude_calendar_id=999_999)
    assert "No calendar has id 999999" in exc.value.message_dict["exclude_calendar"][0]


def test_calendar_validation_names_the_field():
    with pytest.raises(ValidationError) as exc:
        calendar_save(name="", timezone="Mars/Base", dates=["soon"])
    assert set(exc.value.message_dict) == {"name", "timezone", "dates"}


def test_a_job_disabled_by_hand_has_no_disabled_reason(clock):
    job = IntervalJobFactory(interval_minutes=5)
    job = job_disable(job)
    assert job.disabled_reason == ""


def test_jobs_created_through_the_service_write_next_start_only_with_jitter(clock):
    job = job_create(
        name="jittered",
        task_function=IntervalJobFactory.build()["task_function"],
        job_type_id=JobType.INTERVAL,
        interval_minutes=5,
        jitter_seconds=60,
    )
    assert job.next_start_at is not None
    assert ZoneInfo("UTC") and job.next_start_at - job.next_run_time < timedelta(seconds=60)


def test_the_scheduler_disabling_an_ended_job_is_in_its_audit_trail(clock):
    job = IntervalJobFactory(interval_minutes=5, max_runs=1)
    clock.set(job.next_run_time)
    claim(clock.now)
    entry = JobAuditEntry.objects.filter(job=job, action="disable").get()
    assert (entry.source, entry.actor) == (ChangeSource.SCHEDULER, "the scheduler")
    assert "completed 1 run" in str(entry.details)

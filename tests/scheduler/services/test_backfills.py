"""Backfill: the past fire times of a job run once each, in fire-time order within slots of their
own, never missed, and never holding up (nor held up by) the live schedule."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from scheduler.enums import ExecutionTrigger, OverlapPolicy
from scheduler.models import ExecutionStatus, JobExecution, JobLease, ScheduledJob
from scheduler.services.backfills import MAX_BACKFILL_RUNS, job_backfill
from scheduler.services.claims import runs_claim
from scheduler.services.executions import execution_finish, execution_start
from scheduler.services.jobs import job_disable, job_pause
from tests.factories import CronJobFactory, IntervalJobFactory

pytestmark = pytest.mark.django_db
A = "instance-a"
BACKFILL = ExecutionTrigger.BACKFILL


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


T0 = utc(2026, 1, 5, 12, 0)


@pytest.fixture(autouse=True)
def only_test_jobs(db, clock):
    ScheduledJob.objects.update(is_enabled=False, next_run_time=None)


def claim(now):
    return runs_claim(instance_id=A, now=now)


def finish(run):
    execution = JobExecution.objects.get(pk=run.execution_id)
    execution_finish(execution_start(execution, instance_id=A))


def hourly(**fields):
    fields.setdefault("cron_expression", "0 * * * *")
    return CronJobFactory(**fields)


def test_backfill_queues_each_fire_time_in_the_range_start_excluded_end_included(clock, user):
    job = hourly()
    outcome = job_backfill(job, utc(2026, 1, 5, 6), utc(2026, 1, 5, 9), user=user)
    assert (outcome.queued, outcome.already_ran) == (3, 0)
    rows = list(JobExecution.objects.filter(job=job).order_by("scheduled_time"))
    assert [r.scheduled_time for r in rows] == [utc(2026, 1, 5, h) for h in (7, 8, 9)]
    assert {(r.trigger, r.status, r.triggered_by_id, r.instance_id) for r in rows} == {
        (BACKFILL, ExecutionStatus.WAITING, user.pk, "")
    }


def test_a_fire_time_that_ran_is_never_run_again(clock):
    job = hourly()
    JobExecution.objects.create(
        job=job, status=ExecutionStatus.SUCCESS, trigger=ExecutionTrigger.SCHEDULED, scheduled_time=utc(2026, 1, 5, 8)
    )
    first = job_backfill(job, utc(2026, 1, 5, 6), utc(2026, 1, 5, 9))
    assert (first.queued, first.already_ran) == (2, 1)
    again = job_backfill(job, utc(2026, 1, 5, 5), utc(2026, 1, 5, 9))
    assert (again.queued, again.already_ran) == (1, 3)
    assert JobExecution.objects.filter(job=job).count() == 4


def test_a_dry_run_counts_without_queueing(clock):
    job = hourly()
    outcome = job_backfill(job, utc(2026, 1, 4, 12), utc(2026, 1, 5, 12), dry_run=True)
    assert (outcome.queued, outcome.already_ran) == (24, 0)
    assert not JobExecution.objects.filter(job=job).exists()


@pytest.mark.parametrize(
    "start, end, field, fragment",
    [
        (utc(2026, 1, 5, 9), utc(2026, 1, 5, 6), "end", "after start"),
        (utc(2026, 1, 5, 9), utc(2026, 1, 5, 9), "end", "after start"),
        (utc(2026, 1, 5, 9), utc(2026, 1, 5, 13), "end", "past only"),
        (utc(2025, 1, 1), utc(2026, 1, 5, 11), "end", "more than 10,000 fire times"),
    ],
)
def test_bad_ranges_are_refused_saying_why(clock, start, end, field, fragment):
    job = CronJobFactory(cron_expression="*/5 * * * *")
    with pytest.raises(ValidationError) as exc:
        job_backfill(job, start, end)
    assert fragment in exc.value.message_dict[field][0]
    assert not JobExecution.objects.exists()


def test_exactly_the_limit_is_accepted(clock):
    job = CronJobFactory(cron_expression="* * * * *")
    end = T0 - timedelta(hours=1)
    outcome = job_backfill(job, end - timedelta(minutes=MAX_BACKFILL_RUNS), end, dry_run=True)
    assert outcome.queued == MAX_BACKFILL_RUNS


@pytest.mark.parametrize("policy", ["skip", "buffer_one", "cancel_other", "terminate_other"])
def test_only_buffer_all_and_allow_all_are_backfill_policies(clock, policy):
    with pytest.raises(ValidationError) as exc:
        job_backfill(hourly(), utc(2026, 1, 5, 6), utc(2026, 1, 5, 9), overlap_policy=policy)
    assert "buffer_all" in exc.value.message_dict["overlap_policy"][0]


def test_backfilled_runs_go_one_after_another_in_fire_time_order_beside_the_live_schedule(clock):
    job = hourly(overlap_policy=OverlapPolicy.BUFFER_ALL, max_instances=1)
    job_backfill(job, utc(2026, 1, 5, 8), utc(2026, 1, 5, 11))
    started = []
    live = []
    clock.set(utc(2026, 1, 5, 12, 30))
    for _ in range(3):
        runs = claim(clock.now)
        # One backfilled run at a time (max_instances 1 of their own), oldest first.
        assert len([r for r in runs if r.trigger == BACKFILL]) == 1
        started += [r.scheduled_time for r in runs if r.trigger == BACKFILL]
        live += [r for r in runs if r.trigger == ExecutionTrigger.SCHEDULED]
        assert JobLease.objects.filter(job=job, is_backfill=True).count() == 1
        for run in runs:
            if run.trigger == BACKFILL:
                finish(run)
    assert started == [utc(2026, 1, 5, h) for h in (9, 10, 11)]
    assert claim(clock.now) == []


def test_live_runs_neither_wait_for_backfilled_runs_nor_hold_them_up(clock):
    job = hourly(overlap_policy=OverlapPolicy.BUFFER_ALL, max_instances=1)
    job_backfill(job, utc(2026, 1, 5, 8), utc(2026, 1, 5, 10))
    clock.set(utc(2026, 1, 5, 13, 0, 1))  # 13:00 is due: it starts at once, with the first backfilled run
    runs = claim(clock.now)
    assert sorted((r.trigger, r.scheduled_time) for r in runs) == [
        (BACKFILL, utc(2026, 1, 5, 9)),
        (ExecutionTrigger.SCHEDULED, utc(2026, 1, 5, 13)),
    ]
    # The live run still in progress does not stop the backfill, nor the backfill the next live run's wait.
    live_run = next(r for r in runs if r.trigger == ExecutionTrigger.SCHEDULED)
    finish(next(r for r in runs if r.trigger == BACKFILL))
    clock.set(utc(2026, 1, 5, 14))
    runs = claim(clock.now)
    assert [(r.trigger, r.scheduled_time) for r in runs] == [(BACKFILL, utc(2026, 1, 5, 10))]
    live_waiting = JobExecution.objects.get(job=job, scheduled_time=utc(2026, 1, 5, 14))
    assert live_waiting.status == ExecutionStatus.WAITING  # behind the live run in progress only
    finish(live_run)
    runs = claim(clock.now)
    assert [(r.trigger, r.scheduled_time) for r in runs] == [(ExecutionTrigger.SCHEDULED, utc(2026, 1, 5, 14))]


def test_backfilled_runs_are_never_missed_however_late_they_start(clock):
    job = hourly(misfire_grace_time=1)
    job_backfill(job, utc(2026, 1, 1), utc(2026, 1, 1, 2), overlap_policy=OverlapPolicy.ALLOW_ALL)
    clock.set(utc(2026, 1, 5, 12, 10))
    runs = [r for r in claim(clock.now) if r.trigger == BACKFILL]
    assert sorted(r.scheduled_time for r in runs) == [utc(2026, 1, 1, 1), utc(2026, 1, 1, 2)]
    assert not JobExecution.objects.filter(status=ExecutionStatus.MISSED).exists()


def test_allow_all_starts_every_backfilled_run_at_once(clock):
    job = hourly(max_instances=1)
    job_backfill(job, utc(2026, 1, 5, 0), utc(2026, 1, 5, 5), overlap_policy=OverlapPolicy.ALLOW_ALL)
    runs = [r for r in claim(clock.now) if r.trigger == BACKFILL]
    assert len(runs) == 5
    assert JobLease.objects.filter(job=job, is_backfill=True).count() == 5


def test_a_fire_time_backfilled_is_not_run_again_by_the_live_schedule(clock):
    job = IntervalJobFactory(interval_minutes=5)
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=T0 - timedelta(minutes=10))
    job.refresh_from_db()
    job_backfill(job, T0 - timedelta(minutes=11), T0 - timedelta(minutes=10))
    clock.set(T0 - timedelta(minutes=10))
    runs = claim(clock.now)
    # The backfilled row holds that fire time; the schedule's insert of it is dropped.
    assert [(r.trigger, r.scheduled_time) for r in runs] == [(BACKFILL, T0 - timedelta(minutes=10))]
    assert JobExecution.objects.filter(job=job, scheduled_time=T0 - timedelta(minutes=10)).count() == 1
    job.refresh_from_db()
    assert job.next_run_time == T0 - timedelta(minutes=5)


def test_an_interval_backfill_keeps_the_jobs_grid(clock):
    job = IntervalJobFactory(interval_minutes=7)  # next run T0 + 7 min: its grid runs back from there
    outcome = job_backfill(job, T0 - timedelta(minutes=30), T0, dry_run=True)
    assert outcome.fire_times == [T0 + timedelta(minutes=7 - 7 * k) for k in range(5, 0, -1)]


def test_backfill_skips_the_calendar_dates_and_keeps_to_the_window(clock):
    from scheduler.services.calendars import calendar_save

    calendar = calendar_save(name="closed", timezone="UTC", dates=["2026-01-03"])
    job = CronJobFactory(cron_expression="0 9 * * *", exclude_calendar=calendar, start_at=utc(2026, 1, 2, 0))
    outcome = job_backfill(job, utc(2025, 12, 30), utc(2026, 1, 5), dry_run=True)
    assert outcome.fire_times == [utc(2026, 1, 2, 9), utc(2026, 1, 4, 9)]


def test_backfilled_runs_go_on_while_the_job_is_paused_or_disabled_and_stop_when_deleted(clock):
    job = hourly()
    job_backfill(job, utc(2026, 1, 5, 8), utc(2026, 1, 5, 10))
    job_pause(job)
    [run] = claim(clock.now)
    assert run.trigger == BACKFILL
    finish(run)
    job_disable(job)
    [run] = claim(clock.now)
    assert run.scheduled_time == utc(2026, 1, 5, 10)


def test_a_deleted_job_cannot_be_backfilled(clock):
    from scheduler.services.jobs import job_delete

    job = hourly()
    job_delete(job)
    with pytest.raises(ValidationError) as exc:
        job_backfill(job, utc(2026, 1, 5, 8), utc(2026, 1, 5, 10))
    assert "job" in exc.value.message_dict

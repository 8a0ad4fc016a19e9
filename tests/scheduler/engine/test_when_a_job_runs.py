"""When a job runs, with real `runscheduler` processes: a one-off date job runs once across restarts
(and with several processes on PostgreSQL), a backfill of a cron job runs to completion in fire-time
order while the live schedule keeps firing, and jittered runs start when the preview said."""

import math
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from scheduler.enums import ExecutionTrigger, OverlapPolicy
from scheduler.models import ExecutionStatus, JobExecution, JobType, ScheduledJob, TaskFunction
from scheduler.services.backfills import job_backfill
from scheduler.services.schedules import job_planned_starts, job_upcoming_fire_times
from tests.factories import CronJobFactory, IntervalJobFactory
from tests.scheduler.engine.conftest import wait_until


def _function(name):
    return TaskFunction.objects.get(name=f"tasks.functions.{name}")


def _processes() -> int:
    """Several processes where they can share the work (PostgreSQL); SQLite runs one."""
    return 3 if connection.vendor == "postgresql" else 1


def test_a_date_job_due_while_no_scheduler_ran_runs_once_and_not_again_after_a_restart(start_scheduler):
    run_at = timezone.now().replace(microsecond=0) + timedelta(seconds=2)
    jobs = [
        IntervalJobFactory(job_type_id=JobType.DATE, interval_minutes=None, run_at=run_at, misfire_grace_time=120)
        for _ in range(5)
    ]
    clock_job = IntervalJobFactory(interval_seconds=1, interval_minutes=None)  # shows the processes at work
    wait_until(lambda: timezone.now() > run_at + timedelta(seconds=1), 10, "the moment to pass with no scheduler")
    procs = [start_scheduler() for _ in range(_processes())]
    wait_until(
        lambda: JobExecution.objects.filter(job__in=jobs, status=ExecutionStatus.SUCCESS).count() == len(jobs),
        30,
        "every date job's one run",
    )
    for proc in procs:
        assert proc.terminate() == 0, proc.log()
    procs = [start_scheduler() for _ in range(_processes())]
    restarted = timezone.now()
    wait_until(
        lambda: JobExecution.objects.filter(
            job=clock_job, scheduled_time__gt=restarted + timedelta(seconds=2)
        ).exists(),
        30,
        "the restarted processes to work for a few seconds",
    )
    for job in jobs:
        [run] = JobExecution.objects.filter(job=job)
        assert (run.scheduled_time, run.status, run.trigger) == (run_at, ExecutionStatus.SUCCESS, "scheduled")
        job.refresh_from_db()
        assert (job.is_enabled, job.next_run_time) == (False, None)
        assert job.disabled_reason.startswith("done: ran once at ")


def test_a_backfill_of_a_cron_job_runs_in_fire_time_order_while_the_live_schedule_fires(start_scheduler):
    now = timezone.now()
    next_minute = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    # Enough one-second runs, one after another, to last past the next minute's live fire time.
    count = math.ceil((next_minute - now).total_seconds()) + 6
    job = CronJobFactory(
        cron_expression="* * * * *",
        task_function=_function("sleep"),
        kwargs={"seconds": 1},
        overlap_policy=OverlapPolicy.SKIP,
        max_instances=1,
    )
    end = now.replace(second=0, microsecond=0) - timedelta(minutes=1)
    outcome = job_backfill(job, end - timedelta(minutes=count), end)
    assert outcome.queued == count
    procs = [start_scheduler() for _ in range(_processes())]
    backfilled = JobExecution.objects.filter(job=job, trigger=ExecutionTrigger.BACKFILL)
    wait_until(
        lambda: backfilled.filter(status=ExecutionStatus.SUCCESS).count() == count,
        count * 3 + 30,
        f"all {count} backfilled runs",
    )
    live = wait_until(
        lambda: JobExecution.objects.filter(
            job=job, trigger=ExecutionTrigger.SCHEDULED, scheduled_time=next_minute, status=ExecutionStatus.SUCCESS
        ).first(),
        30,
        "the live run of the next minute",
    )
    for proc in procs:
        assert proc.terminate() == 0, proc.log()
    runs = list(backfilled.order_by("scheduled_time"))
    assert [r.scheduled_time for r in runs] == [end - timedelta(minutes=count - 1 - i) for i in range(count)]
    starts = [r.started_at for r in runs]
    assert starts == sorted(starts), "backfilled runs started out of fire-time order"
    assert all(b.started_at >= a.finished_at for a, b in zip(runs, runs[1:])), "backfilled runs overlapped"
    # The live run was not held up by the backfill still in progress, nor skipped because of it.
    assert live.started_at - live.scheduled_time < timedelta(seconds=3)
    assert any(r.started_at > live.started_at for r in runs), "the backfill should still have been running"
    assert not JobExecution.objects.filter(job=job, status=ExecutionStatus.SKIPPED).exists()
    assert (
        len({r.scheduled_time for r in JobExecution.objects.filter(job=job)})
        == JobExecution.objects.filter(job=job).count()
    ), "a fire time ran twice"


def test_jittered_runs_start_at_the_planned_starts_the_preview_shows(start_scheduler):
    job = IntervalJobFactory(interval_seconds=3, interval_minutes=None, jitter_seconds=2)
    ScheduledJob.objects.exclude(pk=job.pk).update(is_enabled=False, next_run_time=None)
    fire_times = job_upcoming_fire_times(job, 4)
    planned = job_planned_starts(job, fire_times)
    start_scheduler()
    wait_until(
        lambda: JobExecution.objects.filter(job=job, scheduled_time__in=fire_times, status="success").count() == 4,
        30,
        "four jittered runs",
    )
    runs = {r.scheduled_time: r for r in JobExecution.objects.filter(job=job, scheduled_time__in=fire_times)}
    for fire_time, start in zip(fire_times, planned):
        run = runs[fire_time]
        assert run.planned_start == start
        assert start <= run.started_at < start + timedelta(seconds=2), (fire_time, start, run.started_at)
    assert any(start - t > timedelta(milliseconds=100) for t, start in zip(fire_times, planned))

"""Reads of the scheduler's state for the API and the dashboard: job lists, history, status, previews."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from scheduler import clock
from scheduler.backends import backend
from scheduler.enums import ExecutionStatus
from scheduler.models import ExecutionSummary, JobExecution, JobTally, ScheduledJob, SchedulerInstance
from scheduler.services.cron import cron_describe, cron_next_fire_times, cron_validate, zone_get
from scheduler.services.schedules import job_preview_fire_times, job_schedule_describe

NEXT_RUNS_LIMIT = 10
RECENT_EXECUTIONS_WINDOW = timedelta(hours=24)


# --- jobs and their history --------------------------------------------------------------------


def job_list() -> QuerySet[ScheduledJob]:
    """Active jobs with all a listing shows (function, type, users, last run), in one query."""
    return (
        ScheduledJob.objects.active()
        .select_related("task_function", "job_type", "created_by", "updated_by")
        .with_last_execution()
        .order_by("name", "pk")
    )


def job_get(job_id) -> ScheduledJob | None:
    """One active job, annotated like job_list(); None if missing or deleted."""
    return job_list().filter(pk=job_id).first()


def job_execution_list(job: ScheduledJob) -> QuerySet[JobExecution]:
    """A job's executions, newest first."""
    return JobExecution.objects.filter(job=job).select_related("triggered_by", "cancel_requested_by").newest_first()


# --- scheduler status ----------------------------------------------------------------------------


@dataclass(frozen=True)
class JobCounts:
    total: int
    enabled: int
    disabled: int
    paused: int


@dataclass(frozen=True)
class ExecutionCounts:
    """Runs waiting or running now, and outcomes of runs that finished within the window."""

    pending: int
    waiting: int
    running: int
    succeeded: int
    failed: int
    timed_out: int
    cancelled: int
    skipped: int
    missed: int
    window_hours: int

    @property
    def failures(self) -> int:
        """Runs that ended badly (failed or timed out): what the dashboard's failures count shows."""
        return self.failed + self.timed_out


@dataclass(frozen=True)
class SchedulerStatus:
    scheduler_alive: bool
    instances: list[SchedulerInstance]
    jobs: JobCounts
    executions: ExecutionCounts
    next_runs: list[ScheduledJob]
    generated_at: datetime


def instance_list_alive(now: datetime | None = None) -> list[SchedulerInstance]:
    """Scheduler processes that are running and heartbeating, newest first."""
    return list(SchedulerInstance.objects.alive(now).order_by("-started_at", "pk"))


def job_counts() -> JobCounts:
    """Counts of active jobs: all, enabled, disabled, paused (paused jobs may be enabled or not),
    from the job tally the database keeps: a handful of rows whatever the number of jobs."""
    counts = JobTally.objects.filter(is_active=True).aggregate(
        total=Sum("jobs"),
        enabled=Sum("jobs", filter=Q(is_enabled=True)),
        disabled=Sum("jobs", filter=Q(is_enabled=False)),
        paused=Sum("jobs", filter=Q(is_paused=True)),
    )
    return JobCounts(**{key: value or 0 for key, value in counts.items()})


def job_count_active() -> int:
    """How many jobs the job lists hold (active ones), without counting them."""
    return JobTally.objects.jobs(Q(is_active=True))


def execution_counts(now: datetime | None = None) -> ExecutionCounts:
    """Pending and running executions now (few, counted), and the runs that ended in the last 24
    hours by outcome (from the per-minute summary, to the minute)."""
    now = now or timezone.now()
    in_progress = JobExecution.objects.in_progress_counts()
    ended = ExecutionSummary.objects.outcome_counts(now - RECENT_EXECUTIONS_WINDOW)
    S = ExecutionStatus
    return ExecutionCounts(
        pending=in_progress.get(S.PENDING, 0),
        waiting=in_progress.get(S.WAITING, 0),
        running=in_progress.get(S.RUNNING, 0),
        succeeded=ended.get(S.SUCCESS, 0),
        failed=ended.get(S.FAILED, 0),
        timed_out=ended.get(S.TIMED_OUT, 0),
        cancelled=ended.get(S.CANCELLED, 0),
        skipped=ended.get(S.SKIPPED, 0),
        missed=ended.get(S.MISSED, 0),
        window_hours=int(RECENT_EXECUTIONS_WINDOW.total_seconds() // 3600),
    )


def job_list_next_runs(limit: int = NEXT_RUNS_LIMIT) -> list[ScheduledJob]:
    """The jobs that fire next (active, enabled, not paused), soonest first."""
    return list(
        ScheduledJob.objects.schedulable()
        .filter(next_run_time__isnull=False)
        .select_related("task_function")
        .order_by("next_run_time", "-priority", "pk")[:limit]
    )


def database_now() -> datetime:
    """The database's clock (this host's, on SQLite): what the processes' heartbeats are written on."""
    return backend().database_now() or clock.now()


def scheduler_status(now: datetime | None = None) -> SchedulerStatus:
    """Everything the status page shows, read from the database (what the processes recorded)."""
    now = now or database_now()
    instances = instance_list_alive(now)
    return SchedulerStatus(
        scheduler_alive=bool(instances),
        instances=instances,
        jobs=job_counts(),
        executions=execution_counts(now),
        next_runs=job_list_next_runs(),
        generated_at=now,
    )


# --- cron preview ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CronPreview:
    """Whether an expression is valid in a timezone, in words, and its next fire times."""

    expression: str
    timezone: str
    valid: bool
    description: str = ""
    next_run_times: list[datetime] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)


def cron_preview(expression: str, timezone_name: str, count: int, after: datetime | None = None) -> CronPreview:
    """Check a cron expression the way job validation does and list its next `count` fire times
    after `after` (default: now)."""
    after = after or timezone.now()
    errors: dict[str, list[str]] = {}
    try:
        zone_get(timezone_name)
    except ValidationError as exc:
        errors["timezone"] = exc.messages
    try:
        normalised = cron_validate(expression, "UTC" if errors else timezone_name)
    except ValidationError as exc:
        errors["expression"] = exc.messages
    if errors:
        return CronPreview(expression=expression, timezone=timezone_name, valid=False, errors=errors)
    try:
        times = cron_next_fire_times(normalised, timezone_name, after, count)
    except ValueError as exc:
        return CronPreview(
            expression=normalised, timezone=timezone_name, valid=False, errors={"expression": [str(exc)]}
        )
    except OverflowError:  # the calendar ends (year 9999) before `count` fire times
        return CronPreview(
            expression=normalised,
            timezone=timezone_name,
            valid=False,
            errors={"after": [f"There are no {count} fire times after {after.isoformat()}."]},
        )
    return CronPreview(
        expression=normalised,
        timezone=timezone_name,
        valid=True,
        description=cron_describe(normalised),
        next_run_times=times,
    )


@dataclass(frozen=True)
class JobPreview:
    """A saved job's schedule in words and its next fire times, as the engine will fire them."""

    job_id: int
    schedule: str
    timezone: str
    next_run_times: list[datetime]


def job_preview(job: ScheduledJob, count: int, after: datetime | None = None) -> JobPreview:
    """The job's next `count` fire times after `after` (default: from its next run)."""
    return JobPreview(
        job_id=job.pk,
        schedule=job_schedule_describe(job),
        timezone=job.timezone,
        next_run_times=job_preview_fire_times(job, count=count, after=after),
    )

"""Reads of the scheduler's state for the API and the dashboard: job lists, history, status, previews."""

import heapq
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from scheduler import clock
from scheduler.backends import backend
from scheduler.enums import UNFINISHED_STATUSES, ExecutionStatus
from scheduler.models import (
    Calendar,
    ExecutionLog,
    ExecutionSummary,
    JobAuditEntry,
    JobExecution,
    JobTally,
    ScheduledJob,
    SchedulerInstance,
)
from scheduler.querysets import JOB_STATE_FILTERS
from scheduler.services.cron import cron_describe, cron_next_fire_times, cron_validate, zone_get
from scheduler.services.schedules import Schedule, job_planned_starts, job_preview_fire_times, job_schedule_describe

NEXT_RUNS_LIMIT = 10
RECENT_EXECUTIONS_WINDOW = timedelta(hours=24)


# --- jobs and their history --------------------------------------------------------------------


def job_list() -> QuerySet[ScheduledJob]:
    """Active jobs with all a listing shows (function, type, users, last run), in one query."""
    return (
        ScheduledJob.objects.active()
        .select_related("task_function", "job_type", "created_by", "updated_by", "exclude_calendar")
        .with_last_execution()
        .order_by("name", "pk")
    )


def job_get(job_id) -> ScheduledJob | None:
    """One active job, annotated like job_list(); None if missing or deleted."""
    return job_list().filter(pk=job_id).first()


def job_execution_list(job: ScheduledJob) -> QuerySet[JobExecution]:
    """A job's executions, newest first."""
    return JobExecution.objects.filter(job=job).select_related("triggered_by", "cancel_requested_by").newest_first()


def job_audit_list(job_id) -> QuerySet[JobAuditEntry]:
    """A job's audit trail (deleted jobs' included: who deleted it is the question), newest first."""
    return JobAuditEntry.objects.of_job(job_id)


def job_any_get(job_id) -> ScheduledJob | None:
    """A job with this id, deleted or not (its history and audit trail stay); None if none."""
    return ScheduledJob.objects.filter(pk=job_id).first()


def execution_get(execution_id) -> JobExecution | None:
    """One execution with its job, who asked for it and its log (of a deleted job too), or None."""
    return (
        JobExecution.objects.select_related("job__task_function", "triggered_by", "log").filter(pk=execution_id).first()
    )


@dataclass(frozen=True)
class TimelineStep:
    status: str
    at: datetime


def execution_timeline(execution: JobExecution) -> list[TimelineStep]:
    """The states the execution went through and when it entered each: pending when it was
    created, running when it started, then its outcome. Skipped and missed runs were recorded in
    their final state at once."""
    S = ExecutionStatus
    if execution.status in (S.SKIPPED, S.MISSED):
        return [TimelineStep(execution.status, execution.finished_at or execution.created_at)]
    steps = [TimelineStep(S.PENDING, execution.created_at)]
    if execution.started_at:
        steps.append(TimelineStep(S.RUNNING, execution.started_at))
    if execution.status not in UNFINISHED_STATUSES:
        steps.append(
            TimelineStep(execution.status, execution.finished_at or execution.started_at or execution.created_at)
        )
    return steps


def execution_logs(execution: JobExecution) -> tuple[list[dict], int]:
    """The records the run's task function logged (with the marker where some were cut), and how
    many were cut."""
    try:
        log = execution.log
    except ExecutionLog.DoesNotExist:
        return [], 0
    return log.records, log.cut


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
    planned_starts: list[datetime]


def job_preview(job: ScheduledJob, count: int, after: datetime | None = None) -> JobPreview:
    """The job's next `count` fire times after `after` (default: from its next run), and when each starts."""
    times = job_preview_fire_times(job, count=count, after=after)
    return JobPreview(
        job_id=job.pk,
        schedule=job_schedule_describe(job),
        timezone=job.timezone,
        next_run_times=times,
        planned_starts=job_planned_starts(job, times),
    )


def calendar_list() -> QuerySet[Calendar]:
    return Calendar.objects.order_by("name", "pk")


# --- the dashboard's working pages ----------------------------------------------------------------

JOB_SORTS = {
    # name in the URL -> order; empty values last either way, then the id, so pages never overlap
    "name": (F("name").asc(),),
    "-name": (F("name").desc(),),
    "next_run": (F("next_run_time").asc(nulls_last=True),),
    "-next_run": (F("next_run_time").desc(nulls_last=True),),
    "last_run": (F("last_run_time").asc(nulls_last=True),),
    "-last_run": (F("last_run_time").desc(nulls_last=True),),
    "priority": (F("priority").asc(),),
    "-priority": (F("priority").desc(),),
}
NEVER_RUN = "never"


def job_search(
    *, search: str = "", state: str = "", task_function_id: int | None = None, last_status: str = "", sort: str = "name"
) -> QuerySet[ScheduledJob]:
    """Active jobs matching the dashboard's filters, in the chosen order: plain rows, narrow enough
    to sort and page cheaply over a large fleet (job_page() then reads one page as job_list() does).

    `last_status` is the status of a job's latest execution, or "never". A status other than success
    first narrows to jobs that have an execution of that status at all, which the planner answers
    from the executions' status index before it looks at each job's latest run.
    """
    jobs = ScheduledJob.objects.active()
    if search:
        jobs = jobs.filter(name__icontains=search)
    if state:
        jobs = jobs.filter(JOB_STATE_FILTERS[state])
    if task_function_id:
        jobs = jobs.filter(task_function_id=task_function_id)
    if last_status == NEVER_RUN:
        # A claim sets last_run_time, so a job that ever ran has one: the few without one are the
        # only jobs whose executions need looking at (and a job whose history retention removed
        # still counts as having run).
        jobs = jobs.filter(last_run_time__isnull=True).filter(~Exists(JobExecution.objects.filter(job=OuterRef("pk"))))
    elif last_status:
        if last_status != ExecutionStatus.SUCCESS:
            jobs = jobs.filter(Exists(JobExecution.objects.filter(job=OuterRef("pk"), status=last_status)))
        latest = JobExecution.objects.filter(job=OuterRef("pk")).order_by("-created_at", "-pk").values("status")[:1]
        jobs = jobs.alias(latest_status=Subquery(latest)).filter(latest_status=last_status)
    return jobs.order_by(*JOB_SORTS.get(sort, JOB_SORTS["name"]), "pk")


def job_page(jobs: QuerySet[ScheduledJob], start: int, size: int) -> list[ScheduledJob]:
    """Rows start..start+size of a job_search() in its order, each with all a listing shows
    (job_list()): the sort reads narrow rows, and only the page's rows are joined and annotated."""
    ids = list(jobs.values_list("pk", flat=True)[start : start + size])
    full = {job.pk: job for job in job_list().filter(pk__in=ids)}
    return [full[pk] for pk in ids if pk in full]


def count_up_to(queryset: QuerySet, limit: int) -> tuple[int, bool]:
    """How many rows match, counting at most `limit` (and whether there are more): the count of a
    filter over a million jobs stays a bounded read."""
    found = queryset.order_by().values("pk")[: limit + 1].count()
    return min(found, limit), found > limit


@dataclass(frozen=True)
class UpcomingRun:
    at: datetime
    job: ScheduledJob


@dataclass(frozen=True)
class Upcoming:
    runs: list[UpcomingRun]
    until: datetime  # every run due up to this moment is listed
    horizon: datetime  # the end of the window asked for
    complete: bool  # the list reaches the horizon (else it stops at `until`)
    jobs_due: int  # jobs with a run in the window, counted up to a bound
    jobs_due_more: bool


def runs_upcoming(
    now: datetime, *, within: timedelta = timedelta(hours=1), max_jobs: int = 500, max_runs: int = 300
) -> Upcoming:
    """The runs due from now to now + `within` across all jobs that can fire, soonest first.

    Bounded whatever the fleet: the first `max_jobs` jobs by their persisted next run (the due
    index), merged by fire time, and at most `max_runs` runs expanded. When more jobs are due, the
    list is complete only up to the next run of the last job read, and says so.
    """
    horizon = now + within
    due = ScheduledJob.objects.schedulable().filter(next_run_time__lte=horizon)
    jobs = list(due.select_related("task_function").order_by("next_run_time", "pk")[: max_jobs + 1])
    until = horizon
    if len(jobs) > max_jobs:
        jobs, until = jobs[:max_jobs], jobs[max_jobs].next_run_time
    heap = [(job.next_run_time, -job.priority, job.pk, job) for job in jobs]
    heapq.heapify(heap)
    schedules = {}
    runs: list[UpcomingRun] = []
    while heap and len(runs) < max_runs:
        at, priority, pk, job = heapq.heappop(heap)
        if at > until:
            break
        runs.append(UpcomingRun(at, job))
        schedule = schedules.setdefault(pk, Schedule.of(job))
        try:
            heapq.heappush(heap, (schedule.following(at), priority, pk, job))
        except (ValueError, OverflowError):  # no further fire time: the engine pauses such a job
            pass
    if len(runs) >= max_runs and heap:
        until = min(until, heap[0][0])
    jobs_due, more = count_up_to(due, 10_000)
    return Upcoming(runs, until, horizon, until >= horizon, jobs_due, more)

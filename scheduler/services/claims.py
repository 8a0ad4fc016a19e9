"""Claiming due runs across scheduler processes: misfire, coalesce, max_instances leases, priority.

A process claims due job rows with SELECT ... FOR UPDATE SKIP LOCKED, writes each job's new
next_run_time and the runs' execution rows in the same short transaction, and takes a lease per
run. The unique (job, scheduled_time) constraint is the last guard against a duplicate run.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction

from scheduler import clock
from scheduler.backends import NewRun, backend
from scheduler.backends.base import run_key
from scheduler.enums import ChangeSource, ExecutionStatus, ExecutionTrigger
from scheduler.models import JobExecution, JobLease, ScheduledJob
from scheduler.services.audit import job_change
from scheduler.services.leases import lease_expiry, lease_reserve, leases_held, leases_release
from scheduler.services.runs import RunTarget
from scheduler.services.schedules import Schedule

logger = logging.getLogger("scheduler.claims")

# Fire times examined per job in one claim after downtime; beyond it the job skips ahead.
CATCH_UP_LIMIT = 1000
DEFAULT_BATCH_SIZE = 500
# Runs one claim writes at most (catching up many jobs without coalesce can plan thousands each).
MAX_RUNS_PER_CLAIM = 5000


@dataclass(slots=True)
class DueTaskFunction:
    """A due job's task function, as running the job needs it."""

    name: str
    is_active: bool
    offload: bool
    timeout: int | None


@dataclass(slots=True)
class DueJob:
    """A due job row as a claim reads it: only what planning and running it need, and no model
    instances (building a ScheduledJob and its TaskFunction per row was a large part of a claim)."""

    pk: int
    name: str
    job_type_id: int
    interval_seconds: int | None
    interval_minutes: int | None
    interval_hours: int | None
    interval_days: int | None
    cron_expression: str | None
    timezone: str
    args: list
    kwargs: dict
    priority: int
    max_instances: int
    misfire_grace_time: int
    coalesce: bool
    next_run_time: datetime
    last_run_time: datetime | None
    task_function: DueTaskFunction

    COLUMNS = (
        "pk",
        "name",
        "job_type_id",
        *ScheduledJob.INTERVAL_FIELDS,
        "cron_expression",
        "timezone",
        "args",
        "kwargs",
        "priority",
        "max_instances",
        "misfire_grace_time",
        "coalesce",
        "next_run_time",
        "last_run_time",
        "task_function__name",
        "task_function__is_active",
        "task_function__offload",
        "task_function__timeout",
    )

    @classmethod
    def from_row(cls, row: tuple) -> "DueJob":
        return cls(*row[:-4], DueTaskFunction(*row[-4:]))


@dataclass(frozen=True)
class ClaimedRun:
    """A run this process has claimed and holds a lease for; it must now be dispatched."""

    execution_id: int
    job_id: int
    job_name: str
    scheduled_time: datetime
    priority: int
    trigger: str
    offload: bool
    # What running it needs, so the engine's hot path reads nothing back from the database.
    target: RunTarget

    def dispatch_order(self) -> tuple:
        """Highest priority first, then the earliest fire time, then the oldest execution."""
        return -self.priority, self.scheduled_time, self.execution_id


@dataclass(frozen=True)
class PlannedRun:
    scheduled_time: datetime
    status: str  # pending (to run) or missed
    reason: str = ""


def runs_plan(job: "ScheduledJob | DueJob", now: datetime) -> tuple[list[PlannedRun], datetime]:
    """Which of the job's fire times up to `now` run or are missed, and its next fire time.

    APScheduler's meaning: a run later than misfire_grace_time is missed; with coalesce, all
    overdue runs collapse into the latest one.
    """
    schedule = Schedule.of(job)
    grace = timedelta(seconds=job.misfire_grace_time)
    due, fire_time = [], job.next_run_time
    while fire_time <= now and len(due) < CATCH_UP_LIMIT:
        due.append(fire_time)
        fire_time = schedule.following(fire_time)
    if fire_time <= now:
        logger.warning(
            "Job %s (%s) had more than %d overdue fire times; skipping ahead to those within its misfire grace time.",
            job.pk,
            job.name,
            CATCH_UP_LIMIT,
        )
        # Skip only the backlog beyond the grace time: the fire times still within it run (the
        # latest alone, with coalesce), as APScheduler would run them. Fire times are whole
        # seconds apart, so starting 1 s early finds the first one at or after the window.
        window_start = max(fire_time, now - grace) - timedelta(seconds=1)
        fire_time = schedule.next_fire_time(window_start, anchor=job.next_run_time)
        while fire_time <= now and len(due) < 2 * CATCH_UP_LIMIT:
            due.append(fire_time)
            fire_time = schedule.following(fire_time)
        if fire_time <= now:
            fire_time = schedule.next_fire_time(now, anchor=job.next_run_time)
    if job.coalesce:
        due = due[-1:]
    planned = []
    for scheduled_time in due:
        late = now - scheduled_time
        if late > grace:
            planned.append(PlannedRun(scheduled_time, ExecutionStatus.MISSED, _missed_reason(late, job)))
        else:
            planned.append(PlannedRun(scheduled_time, ExecutionStatus.PENDING))
    return planned, fire_time


def runs_claim(
    *, instance_id: str, now: datetime | None = None, batch_size: int = DEFAULT_BATCH_SIZE
) -> list[ClaimedRun]:
    """Claim up to `batch_size` due jobs and any unclaimed pending executions, highest priority first."""
    now = now or clock.now()
    claimed = _claim_due_jobs(instance_id, now, batch_size)
    try:
        claimed += _claim_unclaimed_executions(instance_id, now, batch_size)
    except Exception:
        if not claimed:
            raise
        # The due runs are committed and leased to this process: they must still reach it.
        logger.exception("Claiming unclaimed runs failed; the %d due runs claimed go ahead", len(claimed))
    claimed.sort(key=ClaimedRun.dispatch_order)
    return claimed


def _claim_due_jobs(instance_id, now, batch_size) -> list[ClaimedRun]:
    db = backend()
    with transaction.atomic():
        db.claim_durable()
        jobs = [
            DueJob.from_row(row)
            for row in ScheduledJob.objects.due(now)
            .select_for_update(skip_locked=True, of=("self",))
            .values_list(*DueJob.COLUMNS)[:batch_size]
        ]
        if not jobs:
            return []
        planned_runs, advanced = [], []
        for job in jobs:
            if len(planned_runs) >= MAX_RUNS_PER_CLAIM:
                break  # the other jobs stay due, for the next claim (one statement stays bounded)
            try:
                planned, job.next_run_time = runs_plan(job, now)
            except (ValueError, OverflowError) as exc:  # no next fire time: it must not stop the rest
                _job_unschedulable(job, exc)
                continue
            advanced.append(job)
            for run in planned:
                planned_runs.append((job, run))
                if run.status == ExecutionStatus.PENDING:
                    job.last_run_time = run.scheduled_time
        held = leases_held([job.pk for job in advanced], now)
        new_runs = []
        for job, run in planned_runs:
            status, reason = run.status, run.reason
            if status == ExecutionStatus.PENDING and (reason := lease_reserve(job, held)):
                status = ExecutionStatus.SKIPPED
            new_runs.append(NewRun(job.pk, status, run.scheduled_time, reason))
        inserted = db.runs_insert(
            new_runs,
            trigger=ExecutionTrigger.SCHEDULED,
            instance_id=instance_id,
            now=now,
            lease_expires_at=lease_expiry(now),
        )
        claimed = []
        for job, run in planned_runs:
            row = inserted.get(run_key(job.pk, run.scheduled_time))
            if row is None:
                logger.warning(
                    "Run of job %s at %s already exists; not running it again.", job.pk, run.scheduled_time.isoformat()
                )
            elif row[1] == ExecutionStatus.PENDING:
                claimed.append(_claimed(row[0], run.scheduled_time, ExecutionTrigger.SCHEDULED, job))
        db.jobs_advance([(job.pk, job.next_run_time, job.last_run_time) for job in advanced])
    return claimed


def _claim_unclaimed_executions(instance_id, now, batch_size) -> list[ClaimedRun]:
    """Manual runs, and scheduled runs another process released when it stopped."""
    if not JobExecution.objects.unclaimed().exists():  # the common case: no write transaction
        return []
    with transaction.atomic():
        backend().claim_durable()
        executions = list(
            JobExecution.objects.unclaimed()
            .select_for_update(skip_locked=True)
            .order_by("created_at", "pk")[:batch_size]
        )
        if not executions:
            return []
        # Lease counting for a job is serialised by its row lock, as in _claim_due_jobs.
        jobs = {
            job.pk: job
            for job in ScheduledJob.objects.select_for_update(of=("self",))
            .select_related("task_function")
            .filter(pk__in={e.job_id for e in executions})
            .order_by("pk")
        }
        run_jobs = [jobs[e.job_id] for e in executions]
        for execution, job in zip(executions, run_jobs):
            execution.instance_id = instance_id
            late = now - execution.scheduled_time
            if not job.is_active:
                execution.status = ExecutionStatus.SKIPPED
                execution.finished_at = now
                execution.error_message = "skipped: the job was deleted before the run started"
            elif execution.trigger == ExecutionTrigger.SCHEDULED and late > timedelta(seconds=job.misfire_grace_time):
                execution.status = ExecutionStatus.MISSED
                execution.finished_at = now
                execution.error_message = _missed_reason(late, job)
            elif execution.trigger == ExecutionTrigger.MANUAL:
                job.last_run_time = now
        held = leases_held(jobs.keys(), now)
        for execution, job in zip(executions, run_jobs):
            if execution.status == ExecutionStatus.PENDING and (reason := lease_reserve(job, held)):
                execution.status = ExecutionStatus.SKIPPED
                execution.finished_at = now
                execution.error_message = reason
        JobExecution.objects.bulk_update(executions, ["instance_id", "status", "finished_at", "error_message"])
        ScheduledJob.objects.bulk_update(list(jobs.values()), ["last_run_time"])
        JobLease.objects.take(
            [e for e in executions if e.status == ExecutionStatus.PENDING],
            instance_id=instance_id,
            now=now,
            expires_at=lease_expiry(now),
        )
    return [
        _claimed(e.pk, e.scheduled_time, e.trigger, job)
        for e, job in zip(executions, run_jobs)
        if e.status == ExecutionStatus.PENDING
    ]


def _job_unschedulable(job: DueJob, exc: Exception) -> None:
    """Pause a job whose schedule has no next fire time (an expression the cron rules no longer
    let match any date), saying why, so it stops coming due and the operator sees it."""
    reason = f"paused by the scheduler: its schedule has no next fire time ({exc}); fix the schedule, then resume"
    with job_change("pause", job.pk, source=ChangeSource.SCHEDULER, actor="the scheduler", reason=reason[:1000]):
        ScheduledJob.objects.filter(pk=job.pk).update(is_paused=True, pause_reason=reason[:1000])
    logger.error("Job %s (%s) %s", job.pk, job.name, reason, extra={"job_id": job.pk})


def _missed_reason(late: timedelta, job) -> str:
    return f"missed: {late.total_seconds():.1f}s late, more than the misfire grace time of {job.misfire_grace_time}s"


def _claimed(execution_id: int, scheduled_time: datetime, trigger: str, job: "ScheduledJob | DueJob") -> ClaimedRun:
    return ClaimedRun(
        execution_id=execution_id,
        job_id=job.pk,
        job_name=job.name,
        scheduled_time=scheduled_time,
        priority=job.priority,
        trigger=trigger,
        offload=job.task_function.offload,
        target=RunTarget.of_job(execution_id, scheduled_time, job),
    )


def runs_release(execution_ids, *, instance_id: str) -> int:
    """Give back claimed runs that never started (a stopping process), so another process runs them."""
    with transaction.atomic():
        leases_release(execution_ids, instance_id=instance_id)
        return JobExecution.objects.filter(
            pk__in=execution_ids, status=ExecutionStatus.PENDING, instance_id=instance_id
        ).update(instance_id="")

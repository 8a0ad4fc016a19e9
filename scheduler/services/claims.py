"""Claiming due runs across scheduler processes: misfire, coalesce, max_instances leases, priority.

A process claims due job rows with SELECT ... FOR UPDATE SKIP LOCKED, writes each job's new
next_run_time and the runs' execution rows in the same short transaction, and takes a lease per
run. The unique (job, scheduled_time) constraint is the last guard against a duplicate run.
"""
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.utils import timezone

from scheduler.models import (
    ExecutionStatus,
    ExecutionTrigger,
    JobExecution,
    ScheduledJob,
    ScheduledJobLock,
)
from scheduler.services.jobs import job_following_fire_time, job_next_fire_time
from scheduler.services.runs import RunTarget

logger = logging.getLogger("scheduler.claims")

# Fire times examined per job in one claim after downtime; beyond it the job skips ahead.
CATCH_UP_LIMIT = 1000
DEFAULT_BATCH_SIZE = 500


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
    instances (building a ScheduledJob and its TaskFunction per row cost a fifth of a claim)."""

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

    # The schedule arithmetic (services.jobs) reads these as it reads them on a ScheduledJob.
    INTERVAL_FIELDS = ScheduledJob.INTERVAL_FIELDS
    is_cron = ScheduledJob.is_cron
    interval_total_seconds = ScheduledJob.interval_total_seconds

    COLUMNS = (
        "pk", "name", "job_type_id", *ScheduledJob.INTERVAL_FIELDS, "cron_expression", "timezone", "args",
        "kwargs", "priority", "max_instances", "misfire_grace_time", "coalesce", "next_run_time",
        "last_run_time", "task_function__name", "task_function__is_active", "task_function__offload",
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
    grace = timedelta(seconds=job.misfire_grace_time)
    due, fire_time = [], job.next_run_time
    while fire_time <= now and len(due) < CATCH_UP_LIMIT:
        due.append(fire_time)
        fire_time = job_following_fire_time(job, fire_time)
    if fire_time <= now:
        logger.warning(
            "Job %s (%s) had more than %d overdue fire times; skipping ahead to those within its "
            "misfire grace time.",
            job.pk, job.name, CATCH_UP_LIMIT,
        )
        # Skip only the backlog beyond the grace time: the fire times still within it run (the
        # latest alone, with coalesce), as APScheduler would run them. Fire times are whole
        # seconds apart, so starting 1 s early finds the first one at or after the window.
        window_start = max(fire_time, now - grace) - timedelta(seconds=1)
        fire_time = job_next_fire_time(job, window_start)
        while fire_time <= now and len(due) < 2 * CATCH_UP_LIMIT:
            due.append(fire_time)
            fire_time = job_following_fire_time(job, fire_time)
        if fire_time <= now:
            fire_time = job_next_fire_time(job, now)
    if job.coalesce:
        due = due[-1:]
    planned = []
    for scheduled_time in due:
        late = now - scheduled_time
        if late > grace:
            reason = (
                f"missed: {late.total_seconds():.1f}s late, more than the misfire grace time "
                f"of {job.misfire_grace_time}s"
            )
            planned.append(PlannedRun(scheduled_time, ExecutionStatus.MISSED, reason))
        else:
            planned.append(PlannedRun(scheduled_time, ExecutionStatus.PENDING))
    return planned, fire_time


def runs_claim(
    *, instance_id: str, now: datetime | None = None, batch_size: int = DEFAULT_BATCH_SIZE
) -> list[ClaimedRun]:
    """Claim up to `batch_size` due jobs and any unclaimed pending executions, highest priority first."""
    now = now or timezone.now()
    claimed = _claim_due_jobs(instance_id, now, batch_size)
    claimed += _claim_unclaimed_executions(instance_id, now, batch_size)
    claimed.sort(key=lambda run: (-run.priority, run.scheduled_time, run.execution_id))
    return claimed


def _durable() -> None:
    """Claims are what make runs happen exactly once: they always wait for the WAL flush, even in
    a scheduler process that records run outcomes with synchronous_commit off."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO ON")


def _claim_due_jobs(instance_id, now, batch_size) -> list[ClaimedRun]:
    with transaction.atomic():
        _durable()
        jobs = [
            DueJob.from_row(row)
            for row in ScheduledJob.objects.due(now)
            .select_for_update(skip_locked=True, of=("self",))
            .values_list(*DueJob.COLUMNS)[:batch_size]
        ]
        if not jobs:
            return []
        planned_runs = []
        for job in jobs:
            planned, job.next_run_time = runs_plan(job, now)
            for run in planned:
                planned_runs.append((job, run))
                if run.status == ExecutionStatus.PENDING:
                    job.last_run_time = run.scheduled_time
        if connection.vendor == "postgresql":
            claimed = _due_runs_insert_postgresql(planned_runs, instance_id, now)
        else:
            claimed = _due_runs_insert(planned_runs, instance_id, now)
        _jobs_advance(jobs)
    return claimed


def _due_runs_insert(planned_runs, instance_id, now) -> list[ClaimedRun]:
    """Execution rows and leases for planned runs, through the ORM (SQLite: one process at a time)."""
    executions = [
        JobExecution(
            job_id=job.pk, status=run.status, trigger=ExecutionTrigger.SCHEDULED, scheduled_time=run.scheduled_time,
            instance_id=instance_id, error_message=run.reason,
            finished_at=now if run.status == ExecutionStatus.MISSED else None,
        )
        for job, run in planned_runs
    ]
    run_jobs = [job for job, _ in planned_runs]
    _leases_take(executions, run_jobs, instance_id, now)
    _executions_insert(executions)
    ScheduledJobLock.objects.bulk_create(
        [
            ScheduledJobLock(
                job_id=e.job_id, execution_id=e.pk, locked_by=instance_id, locked_at=now,
                expires_at=now + timedelta(seconds=settings.SCHEDULER_LOCK_TTL),
            )
            for e in executions
            if e.pk and e.status == ExecutionStatus.PENDING
        ]
    )
    return [
        _claimed(e.pk, e.scheduled_time, e.trigger, job)
        for e, job in zip(executions, run_jobs)
        if e.pk and e.status == ExecutionStatus.PENDING
    ]


def _due_runs_insert_postgresql(planned_runs, instance_id, now) -> list[ClaimedRun]:
    """The same as _due_runs_insert in one statement: execution rows and their leases together.

    The runs travel as one JSON document, which Python's C encoder builds far faster than
    psycopg quotes thousands of separate values or array elements; a run whose (job,
    scheduled_time) already exists is dropped by ON CONFLICT, and the rest are inserted.
    """
    held = _leases_held([job for job, _ in planned_runs], now)
    rows = []
    for job, run in planned_runs:
        status, reason = run.status, run.reason
        if status == ExecutionStatus.PENDING:
            reason = _lease_reserve(job, held)
            status = ExecutionStatus.SKIPPED if reason else status
        rows.append({"job_id": job.pk, "status": status, "scheduled_time": run.scheduled_time.isoformat(),
                     "error_message": reason})
    execution_table = connection.ops.quote_name(JobExecution._meta.db_table)
    lock_table = connection.ops.quote_name(ScheduledJobLock._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH batch AS (
                SELECT * FROM jsonb_to_recordset(%(runs)s::jsonb)
                AS batch(job_id bigint, status varchar, scheduled_time timestamptz, error_message text)
            ), inserted AS (
                INSERT INTO {execution_table} (
                    job_id, status, trigger, scheduled_time, created_at, finished_at, error_message,
                    traceback, instance_id, hostname, celery_task_id
                )
                SELECT job_id, status, %(trigger)s, scheduled_time, %(created_at)s,
                       CASE WHEN status = %(pending)s THEN NULL ELSE %(now)s END, error_message,
                       '', %(instance_id)s, '', ''
                FROM batch
                -- a literal predicate, not a parameter: it must match the partial unique index
                ON CONFLICT (job_id, scheduled_time) WHERE trigger = '{ExecutionTrigger.SCHEDULED}' DO NOTHING
                RETURNING id, job_id, scheduled_time, status
            ), leases AS (
                INSERT INTO {lock_table} (job_id, execution_id, locked_by, locked_at, expires_at)
                SELECT job_id, id, %(instance_id)s, %(now)s, %(expires_at)s
                FROM inserted WHERE status = %(pending)s
            )
            SELECT id, job_id, scheduled_time, status FROM inserted
            """,
            {
                "runs": json.dumps(rows), "trigger": ExecutionTrigger.SCHEDULED, "now": now,
                "created_at": timezone.now(),  # as auto_now_add sets it on the ORM path
                "pending": ExecutionStatus.PENDING, "instance_id": instance_id,
                "expires_at": now + timedelta(seconds=settings.SCHEDULER_LOCK_TTL),
            },
        )
        inserted = {(job_id, _utc(scheduled_time)): (pk, status) for pk, job_id, scheduled_time, status in cursor}
    claimed = []
    for job, run in planned_runs:
        row = inserted.get((job.pk, _utc(run.scheduled_time)))
        if row is None:
            _duplicate_dropped(job.pk, run.scheduled_time)
        elif row[1] == ExecutionStatus.PENDING:
            claimed.append(_claimed(row[0], run.scheduled_time, ExecutionTrigger.SCHEDULED, job))
    return claimed


def _utc(moment: datetime) -> datetime:
    # Aware datetimes in different zones can compare unequal at the same instant (the second
    # occurrence of a repeated wall-clock time, PEP 495), so matching is done in UTC.
    return moment.astimezone(UTC)


def _jobs_advance(jobs: list[DueJob]) -> None:
    """Write each claimed job's new next_run_time and last_run_time.

    Django's bulk_update would build a CASE expression per row, which cost more than the rest of
    the claim; on PostgreSQL it is one statement, elsewhere one parameterised statement per row.
    (_due_runs_insert_postgresql says why the rows travel as JSON.)
    """
    table = connection.ops.quote_name(ScheduledJob._meta.db_table)
    field = ScheduledJob._meta.get_field
    if connection.vendor == "postgresql":
        # One statement for the whole batch, its rows as one JSON document (see above).
        rows = [
            {"id": job.pk, "next_run_time": job.next_run_time.isoformat() if job.next_run_time else None,
             "last_run_time": job.last_run_time.isoformat() if job.last_run_time else None}
            for job in jobs
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS job SET next_run_time = batch.next_run_time, "
                f"last_run_time = batch.last_run_time "
                f"FROM jsonb_to_recordset(%s::jsonb) AS batch(id bigint, next_run_time timestamptz, "
                f"last_run_time timestamptz) WHERE job.id = batch.id",
                [json.dumps(rows)],
            )
        return
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET next_run_time = %s, last_run_time = %s WHERE id = %s",
            [
                (
                    field("next_run_time").get_db_prep_save(job.next_run_time, connection),
                    field("last_run_time").get_db_prep_save(job.last_run_time, connection),
                    job.pk,
                )
                for job in jobs
            ],
        )


def _claim_unclaimed_executions(instance_id, now, batch_size) -> list[ClaimedRun]:
    """Manual runs, and scheduled runs another process released when it stopped."""
    if not JobExecution.objects.unclaimed().exists():  # the common case: no write transaction
        return []
    with transaction.atomic():
        _durable()
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
            elif (
                execution.trigger == ExecutionTrigger.SCHEDULED
                and late > timedelta(seconds=job.misfire_grace_time)
            ):
                execution.status = ExecutionStatus.MISSED
                execution.finished_at = now
                execution.error_message = (
                    f"missed: {late.total_seconds():.1f}s late, more than the misfire grace time "
                    f"of {job.misfire_grace_time}s"
                )
            elif execution.trigger == ExecutionTrigger.MANUAL:
                job.last_run_time = now
        _leases_take(executions, run_jobs, instance_id, now)
        JobExecution.objects.bulk_update(executions, ["instance_id", "status", "finished_at", "error_message"])
        ScheduledJob.objects.bulk_update(list(jobs.values()), ["last_run_time"])
        ScheduledJobLock.objects.bulk_create(
            [
                ScheduledJobLock(
                    job_id=e.job_id, execution_id=e.pk, locked_by=instance_id, locked_at=now,
                    expires_at=now + timedelta(seconds=settings.SCHEDULER_LOCK_TTL),
                )
                for e in executions
                if e.status == ExecutionStatus.PENDING
            ]
        )
    return [
        _claimed(e.pk, e.scheduled_time, e.trigger, job)
        for e, job in zip(executions, run_jobs)
        if e.status == ExecutionStatus.PENDING
    ]


def _leases_take(executions, run_jobs, instance_id, now) -> None:
    """Runs over a job's max_instances (live leases across all processes) become skipped."""
    held = _leases_held(run_jobs, now)
    for execution, job in zip(executions, run_jobs):
        if execution.status != ExecutionStatus.PENDING:
            continue
        skip_reason = _lease_reserve(job, held)
        if skip_reason:
            execution.status = ExecutionStatus.SKIPPED
            execution.finished_at = now
            execution.error_message = skip_reason


def _lease_reserve(job, held: dict[int, int]) -> str:
    """Count one more live lease for the job, or say why its run is skipped (held is updated)."""
    if held.get(job.pk, 0) >= job.max_instances:
        return f"skipped: max_instances ({job.max_instances}) runs of this job were already running"
    held[job.pk] = held.get(job.pk, 0) + 1
    return ""


def _leases_held(jobs, now) -> dict[int, int]:
    """Live leases per job id, across all processes; jobs holding none are absent."""
    return dict(
        ScheduledJobLock.objects.live(now)
        .filter(job_id__in={job.pk for job in jobs})
        .values_list("job_id")
        .annotate(n=Count("pk"))
    )


def _executions_insert(executions: list[JobExecution]) -> None:
    """Insert in bulk; if a (job, scheduled_time) already ran, drop that one run and keep the rest."""
    try:
        with transaction.atomic():
            JobExecution.objects.bulk_create(executions)
        return
    except IntegrityError:
        pass
    for execution in executions:
        execution.pk = None
        try:
            with transaction.atomic():
                execution.save(force_insert=True)
        except IntegrityError:
            execution.pk = None
            _duplicate_dropped(execution.job_id, execution.scheduled_time)


def _duplicate_dropped(job_id, scheduled_time) -> None:
    logger.warning("Run of job %s at %s already exists; not running it again.", job_id, scheduled_time.isoformat())


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
        ScheduledJobLock.objects.filter(execution_id__in=execution_ids, locked_by=instance_id).delete()
        return JobExecution.objects.filter(
            pk__in=execution_ids, status=ExecutionStatus.PENDING, instance_id=instance_id
        ).update(instance_id="")

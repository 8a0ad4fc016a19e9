"""Claiming due runs across scheduler processes: misfire, coalesce, max_instances leases and
overlap policies, priority.

A process claims due job rows with SELECT ... FOR UPDATE SKIP LOCKED, writes each job's new
next_run_time and the runs' execution rows in the same short transaction, and takes a lease per
run that starts. The unique (job, scheduled_time) constraint is the last guard against a
duplicate run. Runs an overlap policy keeps waiting are started, in fire-time order, by a later
claim once their job has a free slot.
"""

import dataclasses
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Count, Q

from scheduler import clock
from scheduler.backends import NewRun, backend
from scheduler.backends.base import run_key
from scheduler.enums import OVERLAP_WAITING_LIMIT, ChangeSource, ExecutionStatus, ExecutionTrigger
from scheduler.models import Calendar, JobExecution, JobLease, ScheduledJob
from scheduler.services.audit import job_change
from scheduler.services.cancels import executions_stop_oldest
from scheduler.services.leases import lease_expiry, leases_held, leases_release
from scheduler.services.overlap import STOPS_OLDEST, Occupancy, buffers, run_admit
from scheduler.services.runs import RunTarget
from scheduler.services.schedules import Schedule, ScheduleEnded, SkipDates, fire_time_start, jitter_delay

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
    overlap_policy: str
    timeout: int | None
    next_run_time: datetime
    next_start_at: datetime | None
    last_run_time: datetime | None
    # When a job runs (jitter, window, one date, max runs, calendar): all empty on a plain job.
    run_at: datetime | None
    start_at: datetime | None
    end_at: datetime | None
    jitter_seconds: int
    max_runs: int | None
    scheduled_runs: int
    exclude_calendar_id: int | None
    task_function: DueTaskFunction
    # Set by the claim from the batch's calendars (services.schedules.job_skip_dates reads it).
    skip_dates: SkipDates | None = None

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
        "overlap_policy",
        "timeout",
        "next_run_time",
        "next_start_at",
        "last_run_time",
        "run_at",
        "start_at",
        "end_at",
        "jitter_seconds",
        "max_runs",
        "scheduled_runs",
        "exclude_calendar_id",
        "task_function__name",
        "task_function__is_active",
        "task_function__offload",
        "task_function__timeout",
    )

    @classmethod
    def from_row(cls, row: tuple) -> "DueJob":
        return cls(*row[:-4], DueTaskFunction(*row[-4:]))

    def effective_timeout(self) -> int | None:
        return self.timeout or self.task_function.timeout

    def start(self) -> datetime:
        """When its next fire time starts (later than the fire time with jitter)."""
        return self.next_start_at or self.next_run_time


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
    # Claimed ahead of its time: when it is to start, on the database's clock (None: at once).
    start_at: datetime | None = None

    def dispatch_order(self) -> tuple:
        """Highest priority first, then the earliest fire time, then the oldest execution."""
        return -self.priority, self.scheduled_time, self.execution_id


@dataclass(frozen=True)
class PlannedRun:
    scheduled_time: datetime
    status: str  # pending (to run) or missed
    reason: str = ""
    planned_start: datetime | None = None  # with jitter: when it was to start


def runs_plan(job: "ScheduledJob | DueJob", now: datetime) -> tuple[list[PlannedRun], datetime | None]:
    """Which of the job's fire times up to `now` run or are missed, and its next fire time (None:
    the schedule has none left, see ScheduleEnded).

    APScheduler's meaning: a run later than misfire_grace_time is missed; with coalesce, all
    overdue runs collapse into the latest one. With jitter, a fire time is due once its planned
    start has come, and late is measured from that start.
    """
    schedule = Schedule.of(job)
    if schedule.bounded or job.jitter_seconds:
        return _runs_plan_bounded(job, schedule, now)
    return _runs_plan_plain(job, schedule, now)


def _runs_plan_plain(job, schedule: Schedule, now: datetime) -> tuple[list[PlannedRun], datetime]:
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


# --- when a job runs: jitter, windows, one date, calendars, max runs ---------------------------------


def _runs_plan_bounded(job, schedule: Schedule, now: datetime) -> tuple[list[PlannedRun], datetime | None]:
    """runs_plan for a job with jitter, a window, a calendar or one date: a fire time is due once
    its planned start has come, the schedule may end (None), and a fire time on a date added to
    the calendar since it was computed is dropped."""
    grace = timedelta(seconds=job.misfire_grace_time)
    due = []  # (fire time, planned start)
    fire_time = job.next_run_time
    following = _following_or_none(schedule, fire_time)
    start = _planned_start(job, fire_time, following)
    while start <= now and len(due) < CATCH_UP_LIMIT:
        due.append((fire_time, start))
        fire_time = following
        if fire_time is None:
            break
        following = _following_or_none(schedule, fire_time)
        start = _planned_start(job, fire_time, following)
    if fire_time is not None and start <= now:
        logger.warning(
            "Job %s (%s) had more than %d overdue fire times; skipping ahead to those within its misfire grace time.",
            job.pk,
            job.name,
            CATCH_UP_LIMIT,
        )
        # As in the plain plan; the jitter widens the window, since a start trails its fire time.
        window_start = max(fire_time, now - grace - timedelta(seconds=job.jitter_seconds)) - timedelta(seconds=1)
        fire_time = _next_or_none(schedule, window_start, job.next_run_time)
        while fire_time is not None:
            following = _following_or_none(schedule, fire_time)
            start = _planned_start(job, fire_time, following)
            if start > now or len(due) >= 2 * CATCH_UP_LIMIT:
                break
            due.append((fire_time, start))
            fire_time = following
        if fire_time is not None and start <= now:
            fire_time = _next_or_none(schedule, now, job.next_run_time)
    if schedule.skip is not None:
        due = [(t, start) for t, start in due if not schedule.skip.listed(t)]
    if job.coalesce:
        due = due[-1:]
    planned = []
    for scheduled_time, start in due:
        planned_start = start if job.jitter_seconds else None
        late = now - start
        if late > grace:
            planned.append(PlannedRun(scheduled_time, ExecutionStatus.MISSED, _missed_reason(late, job), planned_start))
        else:
            planned.append(PlannedRun(scheduled_time, ExecutionStatus.PENDING, "", planned_start))
    return planned, fire_time


def _following_or_none(schedule: Schedule, fire_time: datetime) -> datetime | None:
    try:
        return schedule.following(fire_time)
    except ScheduleEnded:
        return None


def _next_or_none(schedule: Schedule, after: datetime, anchor: datetime) -> datetime | None:
    try:
        return schedule.next_fire_time(after, anchor=anchor)
    except ScheduleEnded:
        return None


def _planned_start(job, fire_time: datetime, following: datetime | None) -> datetime:
    """services.schedules.fire_time_start, with the following fire time the plan already has."""
    if not job.jitter_seconds:
        return fire_time
    return fire_time + jitter_delay(job.pk, fire_time, job.jitter_seconds, following)


def _calendars_attach(jobs: list[DueJob]) -> None:
    """Give each due job that skips a calendar's dates those dates, from one query for the batch."""
    calendar_ids = {job.exclude_calendar_id for job in jobs if job.exclude_calendar_id is not None}
    if not calendar_ids:
        return
    calendars = {c.pk: SkipDates.of_calendar(c) for c in Calendar.objects.filter(pk__in=calendar_ids)}
    for job in jobs:
        if job.exclude_calendar_id is not None:
            job.skip_dates = calendars[job.exclude_calendar_id]


def _run_budget(job: DueJob, budgets: dict[int, int]) -> bool:
    """Whether a max_runs job may admit one more scheduled run in this claim (and count it)."""
    left = budgets.get(job.pk, job.max_runs - job.scheduled_runs)
    budgets[job.pk] = left
    return left > 0


@dataclass(slots=True)
class _JobEnd:
    """A job this claim disables: its schedule ended or its max_runs are done."""

    job_id: int
    reason: str
    scheduled_runs: int | None = None  # a max_runs job's new count


def _jobs_bounded_outcome(advanced: list[DueJob], planned_runs, inserted) -> list[_JobEnd]:
    """After a claim's insert: the new run counts of max_runs jobs (the runs actually admitted),
    and the jobs that have nothing left to run, with the reason each is disabled with."""
    admitted: dict[int, int] = {}
    missed_only: dict[int, bool] = {}
    for job, run in planned_runs:
        row = inserted.get(run_key(job.pk, run.scheduled_time))
        if row is not None and row[1] in (ExecutionStatus.PENDING, ExecutionStatus.WAITING):
            admitted[job.pk] = admitted.get(job.pk, 0) + 1
            missed_only[job.pk] = False
        elif row is not None and row[1] == ExecutionStatus.MISSED:
            missed_only.setdefault(job.pk, True)
    ends, counts = [], []
    for job in advanced:
        if job.max_runs is not None:
            job.scheduled_runs += admitted.get(job.pk, 0)
            if job.scheduled_runs >= job.max_runs:
                job.next_run_time = None
                done = f"completed {job.scheduled_runs} run{'s' if job.scheduled_runs != 1 else ''}"
                ends.append(_JobEnd(job.pk, done, job.scheduled_runs))
                continue
            if admitted.get(job.pk):
                counts.append(_JobEnd(job.pk, "", job.scheduled_runs))
        if job.next_run_time is None:
            reason = Schedule.of(job).end_reason()
            if job.run_at is not None and missed_only.get(job.pk):
                reason = f"done: its one fire time, {job.run_at.astimezone(UTC).isoformat()}, was missed"
            ends.append(_JobEnd(job.pk, reason, job.scheduled_runs if job.max_runs is not None else None))
    return ends + counts


def _jobs_bounded_write(outcomes: list[_JobEnd]) -> None:
    for outcome in outcomes:
        fields = {} if outcome.scheduled_runs is None else {"scheduled_runs": outcome.scheduled_runs}
        if not outcome.reason:  # a max_runs job's count only
            ScheduledJob.objects.filter(pk=outcome.job_id).update(**fields)
            continue
        fields.update(is_enabled=False, disabled_reason=outcome.reason[:300], next_start_at=None)
        reason = outcome.reason[:300]
        with job_change("disable", outcome.job_id, source=ChangeSource.SCHEDULER, actor="the scheduler", reason=reason):
            ScheduledJob.objects.filter(pk=outcome.job_id).update(**fields)
        logger.info("Job %s disabled: %s", outcome.job_id, outcome.reason, extra={"job_id": outcome.job_id})


def _next_start(job: DueJob) -> datetime | None:
    """The new next_start_at of a claimed job (None without jitter)."""
    if not job.jitter_seconds or job.next_run_time is None:
        return None
    return fire_time_start(job, Schedule.of(job), job.next_run_time)


def runs_claim(
    *,
    instance_id: str,
    now: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    ahead_until: datetime | None = None,
) -> list[ClaimedRun]:
    """Claim up to `batch_size` due jobs and any unclaimed pending executions, highest priority first.

    With `ahead_until`, also the next fire time of jobs that start by then and have every slot
    free: those runs are claimed now and carry their start (ClaimedRun.start_at), for the engine
    to start them at their time. They are decided as at that time, and nothing is ahead of its
    time for a job with a run in progress, so the rules come out as they would have then."""
    now = now or clock.now()
    claimed, errors = [], []
    # Waiting runs first: a slot that freed goes to the run that has waited longest, before a
    # run due now is decided.
    # One look at both partial indexes says whether the claims of waiting and unclaimed runs are needed.
    waiting, unclaimed = backend().claims_pending(now)
    claims = (
        _start_waiting_runs if waiting else None,
        lambda *args: _claim_due_jobs(*args, ahead_until=ahead_until),
        _claim_unclaimed_executions if unclaimed else None,
    )
    for claim in filter(None, claims):
        try:
            claimed += claim(instance_id, now, batch_size)
        except Exception as exc:
            errors.append(exc)
    if errors and not claimed:
        raise errors[0]
    for exc in errors:
        # Each claim committed on its own and leased its runs to this process: they must still reach it.
        logger.error("A claim failed (%s); the %d runs claimed beside it go ahead", exc, len(claimed))
    claimed.sort(key=ClaimedRun.dispatch_order)
    return claimed


def _claim_due_jobs(instance_id, now, batch_size, *, ahead_until=None) -> list[ClaimedRun]:
    db = backend()
    with transaction.atomic():
        db.claim_durable()
        rows, held = db.due_jobs_lock(DueJob.COLUMNS, now=now, ahead_until=ahead_until, limit=batch_size)
        jobs = [DueJob.from_row(row) for row in rows]
        if not jobs:
            return []
        _calendars_attach(jobs)
        planned_runs, advanced, starts = [], [], {}
        for job in jobs:
            if len(planned_runs) >= MAX_RUNS_PER_CLAIM:
                break  # the other jobs stay due, for the next claim (one statement stays bounded)
            start = job.start()
            try:
                # A job claimed ahead is planned as at its start: its one next fire time, on time.
                planned, job.next_run_time = runs_plan(job, max(now, start))
            except (ValueError, OverflowError) as exc:  # no next fire time: it must not stop the rest
                _job_unschedulable(job, exc)
                continue
            if start > now:
                starts[job.pk] = start
            advanced.append(job)
            for run in planned:
                planned_runs.append((job, run))
                if run.status == ExecutionStatus.PENDING:
                    job.last_run_time = run.scheduled_time
        occupancy = _occupancy(advanced, now, held=held)
        # A run another process started since the read above: that job waits for its time.
        busy = {pk for pk in starts if occupancy.held.get(pk) or occupancy.waiting.get(pk)}
        if busy:
            advanced = [job for job in advanced if job.pk not in busy]
            planned_runs = [(job, run) for job, run in planned_runs if job.pk not in busy]
        new_runs, stop_oldest, budgets, within_budget = [], {}, {}, []
        for job, run in planned_runs:
            status, reason = run.status, run.reason
            if status == ExecutionStatus.PENDING:
                if job.max_runs is not None and not _run_budget(job, budgets):
                    continue  # max_runs reached: the job is done, this fire time never runs
                admission = run_admit(job, occupancy)
                status, reason = admission.status, admission.reason
                if admission.stop_oldest:
                    stop_oldest[job.pk] = job.overlap_policy
                if job.max_runs is not None and status != ExecutionStatus.SKIPPED:
                    budgets[job.pk] -= 1
            within_budget.append((job, run))
            new_runs.append(NewRun(job.pk, status, run.scheduled_time, reason, job.args, job.kwargs, run.planned_start))
        planned_runs = within_budget
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
                run_claimed = _claimed(row[0], run.scheduled_time, ExecutionTrigger.SCHEDULED, job)
                start = starts.get(job.pk)
                claimed.append(run_claimed if start is None else dataclasses.replace(run_claimed, start_at=start))
        bounded = [job for job in advanced if job.max_runs is not None or job.next_run_time is None]
        outcomes = _jobs_bounded_outcome(bounded, planned_runs, inserted) if bounded else []
        db.jobs_advance([(job.pk, job.next_run_time, job.last_run_time, _next_start(job)) for job in advanced])
        _jobs_bounded_write(outcomes)
        _stop_oldest(stop_oldest)
    return claimed


def _occupancy(jobs, now, *, held: dict[int, int] | None = None) -> Occupancy:
    """The live leases of these jobs (unless given, as leases_held counts them), and the waiting
    runs of those whose policy buffers: of their live schedule only (backfilled runs have slots
    of their own and never hold up the schedule)."""
    buffering = [job.pk for job in jobs if buffers(job.overlap_policy)]
    waiting = {}
    if buffering:
        waiting = dict(
            JobExecution.objects.waiting()
            .live_schedule()
            .filter(job_id__in=buffering)
            .values_list("job_id")
            .annotate(n=Count("pk"))
            .order_by()
        )
    if held is None:
        held = leases_held([job.pk for job in jobs], now)
    return Occupancy(held=dict(held), waiting=waiting)


def _stop_oldest(policies: dict[int, str]) -> None:
    for job_id, policy in policies.items():
        executions_stop_oldest(job_id, terminate=STOPS_OLDEST[policy], policy=policy)


def _start_waiting_runs(instance_id, now, batch_size) -> list[ClaimedRun]:
    """Start waiting runs, oldest fire time first, of jobs that now have a free slot."""
    job_ids = list(JobExecution.objects.waiting().order_by().values_list("job_id", flat=True).distinct()[:batch_size])
    if not job_ids:  # the common case: one look at an empty partial index
        return []
    with transaction.atomic():
        backend().claim_durable()
        jobs = list(
            ScheduledJob.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("task_function")
            .filter(pk__in=job_ids)
            .order_by("pk")
        )
        held = leases_held([job.pk for job in jobs], now)
        held_backfill = leases_held([job.pk for job in jobs], now, backfill=True)
        started, ended = [], []
        for job in jobs:
            if not job.is_active:
                ended += JobExecution.objects.waiting().filter(job_id=job.pk)
                continue
            started += _waiting_to_start(job, held.get(job.pk, 0), held_backfill.get(job.pk, 0))
        for execution in started:
            execution.status, execution.instance_id, execution.error_message = ExecutionStatus.PENDING, instance_id, ""
        for execution in ended:
            execution.status, execution.finished_at = ExecutionStatus.SKIPPED, now
            execution.error_message = "skipped: the job was deleted before the run started"
        JobExecution.objects.bulk_update(started + ended, ["status", "instance_id", "error_message", "finished_at"])
        JobLease.objects.take(started, instance_id=instance_id, now=now, expires_at=lease_expiry(now))
    return [_claimed_execution(e, e.job) for e in started]


def _waiting_to_start(job: ScheduledJob, held: int, held_backfill: int) -> list[JobExecution]:
    """A job's waiting runs that its free slots let start, oldest fire time first: the live
    schedule's in its slots, backfilled ones in slots of their own."""
    waiting = JobExecution.objects.waiting().filter(job_id=job.pk).order_by("scheduled_time", "pk")
    starting = []
    free = job.max_instances - held
    # A paused or disabled job's runs wait for it to be resumed or enabled.
    if job.can_fire and free > 0:
        starting += waiting.live_schedule()[:free]
    # Backfilled runs were asked for, like a manual run: they go on while the job is paused or
    # disabled (cancel them to stop a backfill).
    free_backfill = job.max_instances - held_backfill
    if free_backfill > 0:
        starting += waiting.filter(trigger=ExecutionTrigger.BACKFILL)[:free_backfill]
    for execution in starting:
        execution.job = job
    return starting


def _claim_unclaimed_executions(instance_id, now, batch_size) -> list[ClaimedRun]:
    """Manual runs, and scheduled runs another process released when it stopped."""
    if not JobExecution.objects.unclaimed(now).exists():  # the common case: no write transaction
        return []
    with transaction.atomic():
        backend().claim_durable()
        executions = list(
            JobExecution.objects.unclaimed(now)
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
            if execution.cancel_requested_at is not None:
                # Asked to stop while a stopping process held it, then given back unstarted: it never starts.
                execution.status = ExecutionStatus.CANCELLED
                execution.finished_at = now
                execution.error_message = execution.cancel_reason or "cancelled"
            elif not job.is_active:
                execution.status = ExecutionStatus.SKIPPED
                execution.finished_at = now
                execution.error_message = "skipped: the job was deleted before the run started"
            elif execution.trigger == ExecutionTrigger.RETRY and not job.can_fire:
                execution.status = ExecutionStatus.SKIPPED
                execution.finished_at = now
                execution.error_message = f"skipped: the job is {job.state}; its retries stop"
            elif execution.trigger == ExecutionTrigger.SCHEDULED and late > timedelta(seconds=job.misfire_grace_time):
                execution.status = ExecutionStatus.MISSED
                execution.finished_at = now
                execution.error_message = _missed_reason(late, job)
            elif execution.trigger == ExecutionTrigger.MANUAL:
                job.last_run_time = now
        occupancy = _occupancy(jobs.values(), now)
        stop_oldest = {}
        for execution, job in zip(executions, run_jobs):
            if execution.status != ExecutionStatus.PENDING or execution.trigger == ExecutionTrigger.BACKFILL:
                continue  # a pending backfilled run was asked for with allow_all: it starts
            admission = run_admit(job, occupancy)
            if admission.status == ExecutionStatus.SKIPPED:
                execution.status, execution.finished_at = ExecutionStatus.SKIPPED, now
            elif admission.status == ExecutionStatus.WAITING:
                execution.status, execution.instance_id = ExecutionStatus.WAITING, ""
            if admission.stop_oldest:
                stop_oldest[job.pk] = job.overlap_policy
            execution.error_message = admission.reason
        JobExecution.objects.bulk_update(executions, ["instance_id", "status", "finished_at", "error_message"])
        ScheduledJob.objects.bulk_update(list(jobs.values()), ["last_run_time"])
        JobLease.objects.take(
            [e for e in executions if e.status == ExecutionStatus.PENDING],
            instance_id=instance_id,
            now=now,
            expires_at=lease_expiry(now),
        )
        _stop_oldest(stop_oldest)
    return [_claimed_execution(e, job) for e, job in zip(executions, run_jobs) if e.status == ExecutionStatus.PENDING]


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


def _claimed_execution(execution: JobExecution, job: ScheduledJob) -> ClaimedRun:
    """A run claimed from its execution row (manual, released, retried or waiting), which may
    carry arguments of its own."""
    return ClaimedRun(
        execution_id=execution.pk,
        job_id=job.pk,
        job_name=job.name,
        scheduled_time=execution.scheduled_time,
        priority=job.priority,
        trigger=execution.trigger,
        offload=job.task_function.offload,
        target=RunTarget.of_execution(execution, job),
    )


def runs_release(execution_ids, *, instance_id: str) -> int:
    """Give back claimed runs that never started (a stopping process), so another process runs them."""
    with transaction.atomic():
        leases_release(execution_ids, instance_id=instance_id)
        released = JobExecution.objects.filter(
            pk__in=execution_ids, status=ExecutionStatus.PENDING, instance_id=instance_id
        )
        # A buffering job's run waits again: a later claim starts it in its fire-time order, not
        # as an unclaimed run re-admitted behind the job's other waiting runs or missed for lateness.
        # (One asked to stop stays unclaimed: the next claim ends it cancelled.)
        # So does a backfilled run: it goes back into its backfill's own fire-time order.
        waiting_again = released.filter(
            Q(job__overlap_policy__in=list(OVERLAP_WAITING_LIMIT)) | Q(trigger=ExecutionTrigger.BACKFILL),
            cancel_requested_at__isnull=True,
        ).update(
            status=ExecutionStatus.WAITING,
            instance_id="",
            error_message="waiting: a stopping scheduler process gave it back before starting it",
        )
        return waiting_again + released.update(instance_id="")

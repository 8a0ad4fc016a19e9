"""The scheduler's data model: task functions, jobs, their executions, leases and processes."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from scheduler.enums import (
    FIRE_TIME_TRIGGERS,
    TROUBLE_STATUSES,
    ExecutionStatus,
    ExecutionTrigger,
    JobState,
    OverlapPolicy,
)
from scheduler.querysets import (
    JOB_STATE_FILTERS,
    START_TIME,
    ExecutionQuerySet,
    ExecutionSummaryQuerySet,
    InstanceQuerySet,
    JobQuerySet,
    JobTallyQuerySet,
    LeaseQuerySet,
    TaskFunctionQuerySet,
    alive_cutoff,
)

MAX_INSTANCES_LIMIT = 10
MAX_RETRIES_LIMIT = 100
MAX_JITTER_SECONDS = 86400


def interval_total_seconds(seconds, minutes, hours, days) -> int:
    """An interval job's period from its four columns (empty ones count as zero)."""
    return (seconds or 0) + 60 * (minutes or 0) + 3600 * (hours or 0) + 86400 * (days or 0)


def clock_offset_skewed(offset_seconds: float | None) -> bool:
    """Whether a host clock this far from the database's is worth telling the operator about."""
    return offset_seconds is not None and abs(offset_seconds) > settings.SCHEDULER_CLOCK_SKEW_WARNING


def default_timezone():
    return settings.TIME_ZONE


class TaskFunction(models.Model):
    """A function jobs may run; rows mirror the code registry in tasks/ and are never deleted."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    offload = models.BooleanField(
        default=False, help_text="Runs on a Celery worker instead of the scheduler's thread pool."
    )
    queue = models.CharField(max_length=100, default="celery")
    timeout = models.PositiveIntegerField(null=True, blank=True, help_text="Seconds; empty for none.")
    is_active = models.BooleanField(default=True, help_text="False once the function is no longer registered in code.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TaskFunctionQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name if self.is_active else f"{self.name} (inactive)"


class JobType(models.Model):
    """How a job's schedule is expressed; ids 1, 2 and 3 are part of the API."""

    INTERVAL = 1
    CRON = 2
    DATE = 3  # one run at run_at

    id = models.PositiveSmallIntegerField(primary_key=True)
    name = models.CharField(max_length=20, unique=True)
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.name


class Calendar(models.Model):
    """Dates on which the jobs referring to it do not fire (public holidays, closing days)."""

    name = models.CharField(max_length=200, unique=True)
    timezone = models.CharField(
        max_length=64, default=default_timezone, help_text="IANA name: the zone in which a fire time's date is read."
    )
    dates = models.JSONField(default=list, blank=True, help_text='Dates to skip, as "YYYY-MM-DD" strings, sorted.')
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class ScheduledJob(models.Model):
    """A recurring job: what to run, on which schedule, and its state."""

    INTERVAL_FIELDS = ("interval_seconds", "interval_minutes", "interval_hours", "interval_days")

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    task_function = models.ForeignKey(TaskFunction, on_delete=models.PROTECT, related_name="jobs")
    job_type = models.ForeignKey(JobType, on_delete=models.PROTECT, related_name="jobs")
    interval_seconds = models.PositiveIntegerField(null=True, blank=True)
    interval_minutes = models.PositiveIntegerField(null=True, blank=True)
    interval_hours = models.PositiveIntegerField(null=True, blank=True)
    interval_days = models.PositiveIntegerField(null=True, blank=True)
    cron_expression = models.CharField(
        max_length=120,
        null=True,
        blank=True,
        help_text="Standard 5-field cron: minute hour day-of-month month day-of-week.",
    )
    timezone = models.CharField(max_length=64, default=default_timezone, help_text="IANA name, e.g. Europe/Paris.")
    args = models.JSONField(default=list, blank=True, encoder=DjangoJSONEncoder)
    kwargs = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    priority = models.IntegerField(default=0, help_text="Higher runs first when runs are due together.")
    max_instances = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_INSTANCES_LIMIT)],
        help_text="Runs of this job allowed at once, across all scheduler processes (1-10).",
    )
    misfire_grace_time = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(1)],
        help_text="Seconds a run may start late; later than that it is recorded as missed.",
    )
    coalesce = models.BooleanField(default=True, help_text="Collapse several overdue runs into one after downtime.")
    overlap_policy = models.CharField(
        max_length=20,
        choices=OverlapPolicy.choices,
        default=OverlapPolicy.SKIP,
        db_default=OverlapPolicy.SKIP,
        help_text="What happens to a run that is due while max_instances runs of this job are in progress.",
    )
    max_retries = models.PositiveSmallIntegerField(
        default=0,
        db_default=0,
        validators=[MaxValueValidator(MAX_RETRIES_LIMIT)],
        help_text="Times a failed run (error, timeout, lost worker) is run again (0-100).",
    )
    retry_backoff = models.PositiveIntegerField(
        default=10,
        db_default=10,
        help_text="Seconds before the first retry; doubled for each further one, with jitter, capped "
        "at SCHEDULER_RETRY_BACKOFF_MAX.",
    )
    timeout = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Seconds a run may take; empty for the task function's own timeout.",
    )
    pause_after_failures = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Pause the job after this many consecutive failed runs; empty for never.",
    )
    history_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Keep at most this many finished executions of this job; empty for no cap.",
    )
    run_at = models.DateTimeField(null=True, blank=True, help_text="Date jobs: the one moment the job runs.")
    start_at = models.DateTimeField(null=True, blank=True, help_text="No fire time before this moment.")
    end_at = models.DateTimeField(null=True, blank=True, help_text="No fire time after this moment.")
    jitter_seconds = models.PositiveIntegerField(
        default=0,
        db_default=0,
        validators=[MaxValueValidator(MAX_JITTER_SECONDS)],
        help_text="Each run starts up to this many seconds after its fire time (the same delay for a fire time "
        "in every process); never as late as the next fire time.",
    )
    max_runs = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Disable the job once this many scheduled runs have started; empty for no limit.",
    )
    scheduled_runs = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Scheduled runs admitted to run so far (what max_runs counts)."
    )
    exclude_calendar = models.ForeignKey(
        Calendar,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="jobs",
        help_text="No fire time falls on a date of this calendar (in the calendar's timezone).",
    )
    is_enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(
        max_length=300, blank=True, default="", db_default="", help_text="Why the scheduler disabled the job."
    )
    is_paused = models.BooleanField(default=False)
    pause_reason = models.TextField(blank=True)
    is_active = models.BooleanField(default=True, help_text="False once deleted (soft delete).")
    # Jobs declared in code (registry: @task_function(schedules=[...])) and kept in step by sync_jobs.
    managed_by = models.CharField(
        max_length=255,
        blank=True,
        default="",
        db_default="",
        help_text="The module.function whose declaration defines this job; empty for jobs made by hand.",
    )
    declaration_removed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a sync found this job's declaration gone from the code and disabled the job.",
    )
    # The nominal fire time: every schedule computation anchors on it.
    next_run_time = models.DateTimeField(null=True, blank=True)
    # When that fire time starts, if later (jitter); empty: at next_run_time. What "due" reads.
    next_start_at = models.DateTimeField(null=True, blank=True)
    last_run_time = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [("trigger_scheduledjob", "Can trigger a manual run of a scheduled job")]
        indexes = [
            # The engine's only read of jobs: due rows of jobs that can fire, by planned start.
            models.Index(
                START_TIME,
                name="scheduler_job_due_idx",
                condition=JOB_STATE_FILTERS[JobState.SCHEDULED],
            ),
            # The sync's read of the jobs it manages, a few among possibly very many.
            models.Index(
                fields=["managed_by"],
                name="scheduler_job_declared_idx",
                condition=Q(is_active=True) & ~Q(managed_by=""),
            ),
            # Job lists soonest first (the API's ordering=nextRunTime: ascending, empty last).
            models.Index(
                fields=["next_run_time", "id"], name="scheduler_job_next_run_idx", condition=Q(is_active=True)
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=Q(is_active=True), name="scheduler_job_unique_active_name"
            ),
            models.CheckConstraint(
                condition=Q(max_instances__gte=1, max_instances__lte=MAX_INSTANCES_LIMIT),
                name="scheduler_job_max_instances_range",
            ),
            models.CheckConstraint(condition=Q(misfire_grace_time__gte=1), name="scheduler_job_misfire_grace_positive"),
            models.CheckConstraint(
                condition=Q(overlap_policy__in=OverlapPolicy.values), name="scheduler_job_overlap_policy_known"
            ),
            models.CheckConstraint(
                condition=Q(max_retries__lte=MAX_RETRIES_LIMIT), name="scheduler_job_max_retries_range"
            ),
            models.CheckConstraint(
                condition=Q(timeout__isnull=True) | Q(timeout__gte=1), name="scheduler_job_timeout_positive"
            ),
            models.CheckConstraint(
                condition=Q(pause_after_failures__isnull=True) | Q(pause_after_failures__gte=1),
                name="scheduler_job_pause_after_failures_positive",
            ),
            models.CheckConstraint(
                condition=(
                    Q(job_type_id=JobType.INTERVAL, cron_expression__isnull=True)
                    # isnull=False on each term: NULL > 0 is unknown, and a CHECK that comes out
                    # unknown passes, which would let an all-NULL interval through.
                    & (
                        Q(interval_seconds__isnull=False, interval_seconds__gt=0)
                        | Q(interval_minutes__isnull=False, interval_minutes__gt=0)
                        | Q(interval_hours__isnull=False, interval_hours__gt=0)
                        | Q(interval_days__isnull=False, interval_days__gt=0)
                    )
                )
                | (
                    Q(job_type_id=JobType.CRON, cron_expression__isnull=False)
                    & ~Q(cron_expression="")
                    & Q(
                        interval_seconds__isnull=True,
                        interval_minutes__isnull=True,
                        interval_hours__isnull=True,
                        interval_days__isnull=True,
                    )
                )
                | Q(
                    job_type_id=JobType.DATE,
                    run_at__isnull=False,
                    cron_expression__isnull=True,
                    interval_seconds__isnull=True,
                    interval_minutes__isnull=True,
                    interval_hours__isnull=True,
                    interval_days__isnull=True,
                ),
                name="scheduler_job_schedule_matches_type",
            ),
            models.CheckConstraint(
                condition=Q(max_runs__isnull=True) | Q(max_runs__gte=1), name="scheduler_job_max_runs_positive"
            ),
            models.CheckConstraint(
                condition=Q(start_at__isnull=True) | Q(end_at__isnull=True) | Q(start_at__lt=F("end_at")),
                name="scheduler_job_window_ordered",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def is_interval(self):
        return self.job_type_id == JobType.INTERVAL

    @property
    def is_cron(self):
        return self.job_type_id == JobType.CRON

    @property
    def is_date(self):
        return self.job_type_id == JobType.DATE

    @property
    def remaining_runs(self) -> int | None:
        """Scheduled runs left before max_runs disables the job (None: no limit)."""
        return None if self.max_runs is None else max(self.max_runs - self.scheduled_runs, 0)

    @property
    def start_time(self):
        """When the next fire time starts: next_run_time, or later by its jitter delay."""
        return self.next_start_at or self.next_run_time

    @property
    def interval_total_seconds(self) -> int:
        return interval_total_seconds(*(getattr(self, f) for f in self.INTERVAL_FIELDS))

    def effective_timeout(self) -> int | None:
        """The job's timeout, else its task function's (seconds; None for none)."""
        return self.timeout or self.task_function.timeout

    @property
    def state(self) -> JobState:
        """The row-level form of querysets.JOB_STATE_FILTERS (a test keeps the two in step)."""
        if not self.is_active:
            return JobState.DELETED
        if not self.is_enabled:
            return JobState.DISABLED
        return JobState.PAUSED if self.is_paused else JobState.SCHEDULED

    @property
    def can_fire(self) -> bool:
        return self.state == JobState.SCHEDULED

    @property
    def is_code_owned(self) -> bool:
        """Declared in code, and the declaration is still there: code owns its declared fields."""
        return bool(self.managed_by) and self.declaration_removed_at is None

    @property
    def managed_by_description(self) -> str:
        """Who owns the job's definition, in the words the admin, dashboard and API show."""
        if not self.managed_by:
            return ""
        if self.declaration_removed_at is not None:
            return f"declaration removed from code (was {self.managed_by})"
        return f"defined in code ({self.managed_by})"


class JobExecution(models.Model):
    """One run of a job, from the moment it is due (or asked for) to its outcome."""

    # No index of its own: scheduler_exec_job_recent_idx starts with job_id and serves every lookup by job.
    job = models.ForeignKey(ScheduledJob, on_delete=models.CASCADE, related_name="executions", db_index=False)
    status = models.CharField(max_length=10, choices=ExecutionStatus.choices, default=ExecutionStatus.PENDING)
    trigger = models.CharField(max_length=10, choices=ExecutionTrigger.choices)
    scheduled_time = models.DateTimeField(help_text="The fire time (or the request time, if manual).")
    planned_start = models.DateTimeField(
        null=True, blank=True, help_text="When the fire time was planned to start, if later (jitter)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    error_message = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    instance_id = models.CharField(max_length=100, blank=True, help_text="The scheduler process that claimed the run.")
    hostname = models.CharField(max_length=255, blank=True, help_text="Where the run executed.")
    celery_task_id = models.CharField(max_length=255, blank=True)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    args = models.JSONField(
        null=True,
        blank=True,
        encoder=DjangoJSONEncoder,
        help_text="What the run was called with (empty: not recorded).",
    )
    kwargs = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    attempt = models.PositiveSmallIntegerField(
        default=1, db_default=1, help_text="1 for the first run of a fire time, 2 for its first retry..."
    )
    retry_of = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="retry",
        help_text="The attempt this one retries.",
    )
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancel_reason = models.CharField(
        max_length=300, blank=True, default="", db_default="", help_text="Who or what asked for the cancel, and why."
    )

    objects = ExecutionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [("cancel_jobexecution", "Can cancel a pending, waiting or running run")]
        indexes = [
            models.Index(fields=["job", "-created_at"], name="scheduler_exec_job_recent_idx"),
            models.Index(fields=["status", "created_at"], name="scheduler_exec_status_idx"),
            # Newest first across all jobs (dashboard, admin list, deep pages read as ids only), and
            # retention's walk through the oldest.
            models.Index(fields=["created_at", "id"], name="scheduler_exec_created_idx"),
            # One job's history filtered by status (job page, API history), counted without the heap.
            models.Index(fields=["job", "status", "-created_at"], name="scheduler_exec_job_status_idx"),
            models.Index(
                fields=["created_at"],
                name="scheduler_exec_unclaimed_idx",
                condition=Q(status=ExecutionStatus.PENDING, instance_id=""),
            ),
            # Runs an overlap policy keeps waiting, started in fire-time order as slots free.
            models.Index(
                fields=["job", "scheduled_time"],
                name="scheduler_exec_waiting_idx",
                condition=Q(status=ExecutionStatus.WAITING),
            ),
            # The notifiers' read: runs that ended badly, by when they ended. Successful runs (the
            # bulk) never enter it, so recording them costs nothing more.
            models.Index(
                fields=["finished_at", "id"],
                name="scheduler_exec_trouble_idx",
                condition=Q(status__in=TROUBLE_STATUSES),
            ),
        ]
        constraints = [
            # A fire time runs once, as a scheduled run or a backfilled one (the PostgreSQL
            # backend's ON CONFLICT repeats this predicate, word for word).
            models.UniqueConstraint(
                fields=["job", "scheduled_time"],
                condition=Q(trigger__in=FIRE_TIME_TRIGGERS),
                name="scheduler_exec_unique_scheduled_run",
            ),
        ]

    def __str__(self):
        return f"{self.job} @ {self.scheduled_time:%Y-%m-%d %H:%M:%S} ({self.status})"

    @property
    def cancel_pending(self) -> bool:
        """Asked to stop and not ended yet: shown as "cancel requested"."""
        return self.cancel_requested_at is not None and self.status in (
            ExecutionStatus.PENDING,
            ExecutionStatus.RUNNING,
        )


class JobLease(models.Model):
    """A lease on one of a job's max_instances slots, held while an execution runs."""

    job = models.ForeignKey(ScheduledJob, on_delete=models.CASCADE, related_name="leases")
    execution = models.OneToOneField(JobExecution, on_delete=models.CASCADE, related_name="lease")
    locked_by = models.CharField(max_length=100, help_text="Scheduler instance id.")
    # Backfilled runs have max_instances slots of their own, apart from the live schedule's.
    is_backfill = models.BooleanField(default=False, db_default=False)
    locked_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    objects = LeaseQuerySet.as_manager()

    class Meta:
        # The table keeps the name it had when the model was called ScheduledJobLock.
        db_table = "scheduler_scheduledjoblock"
        ordering = ["locked_at"]
        indexes = [models.Index(fields=["job", "expires_at"], name="scheduler_lock_job_idx")]

    def __str__(self):
        return f"{self.job} held by {self.locked_by} until {self.expires_at:%Y-%m-%d %H:%M:%S}"


class SchedulerInstance(models.Model):
    """One `runscheduler` process, for status pages and for telling live processes from dead."""

    instance_id = models.CharField(max_length=100, unique=True)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    last_heartbeat = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    clock_offset = models.FloatField(
        null=True, blank=True, help_text="Seconds the database's clock is ahead of this process's host clock."
    )

    objects = InstanceQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return self.instance_id

    @property
    def clock_skewed(self) -> bool:
        return clock_offset_skewed(self.clock_offset)

    def is_alive(self, now=None) -> bool:
        """Same rule as SchedulerInstance.objects.alive(), for a row already in hand."""
        return self.stopped_at is None and self.last_heartbeat >= alive_cutoff(now)


# The histogram buckets of ExecutionSummary, in milliseconds, smallest first: (column, upper bound).
# Durations and fire lags share them, from sub-second inline work to hour-long Celery tasks.
SUMMARY_BUCKETS = (
    ("le_100ms", 100),
    ("le_250ms", 250),
    ("le_500ms", 500),
    ("le_1s", 1_000),
    ("le_2500ms", 2_500),
    ("le_5s", 5_000),
    ("le_15s", 15_000),
    ("le_1m", 60_000),
    ("le_5m", 300_000),
    ("le_15m", 900_000),
    ("le_1h", 3_600_000),
)


class ExecutionSummary(models.Model):
    """How many runs started, and ended by outcome, in one UTC minute: what the dashboard, /status
    and /metrics read instead of counting the history.

    Kept by the database itself (triggers, backends/), in the transaction that moves each
    execution, whoever moves it: the engine, a Celery worker, the lease reaper or raw SQL. A row
    counts events, not rows still in the table, so retention and history limits never change the
    past. `status` is the state entered: `running` for a start (whose times are fire lags of
    scheduled runs), or the outcome of an end (whose times are run durations of success and
    failed). Writers add to the row of their own `shard` (a function of their session), so
    concurrent writers rarely wait on one row; readers sum the shards.
    """

    minute = models.DateTimeField(help_text="Start of the UTC minute.")
    status = models.CharField(max_length=10, choices=ExecutionStatus.choices)
    shard = models.PositiveSmallIntegerField(default=0)
    runs = models.BigIntegerField(default=0)
    timed = models.BigIntegerField(
        default=0, help_text="Runs with a time: durations of ends, lags of scheduled starts."
    )
    total_ms = models.BigIntegerField(default=0)
    max_ms = models.BigIntegerField(null=True, blank=True)
    le_100ms = models.BigIntegerField(default=0)
    le_250ms = models.BigIntegerField(default=0)
    le_500ms = models.BigIntegerField(default=0)
    le_1s = models.BigIntegerField(default=0)
    le_2500ms = models.BigIntegerField(default=0)
    le_5s = models.BigIntegerField(default=0)
    le_15s = models.BigIntegerField(default=0)
    le_1m = models.BigIntegerField(default=0)
    le_5m = models.BigIntegerField(default=0)
    le_15m = models.BigIntegerField(default=0)
    le_1h = models.BigIntegerField(default=0)

    objects = ExecutionSummaryQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["minute", "status", "shard"], name="scheduler_summary_unique_minute"),
        ]

    def __str__(self):
        return f"{self.minute:%Y-%m-%d %H:%M} {self.status}: {self.runs}"


class JobTally(models.Model):
    """How many jobs have each combination of the state columns, kept by the database (triggers,
    backends/) as jobs are created, change state or are removed: job counts without counting a
    million rows. The columns have ScheduledJob's names, so JOB_STATE_FILTERS apply to it as they
    are. Sharded like ExecutionSummary; a shard's count may go below zero (a job counted in one
    session's shard, moved in another's), the sums are exact."""

    is_active = models.BooleanField()
    is_enabled = models.BooleanField()
    is_paused = models.BooleanField()
    shard = models.PositiveSmallIntegerField(default=0)
    jobs = models.BigIntegerField(default=0)

    objects = JobTallyQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["is_active", "is_enabled", "is_paused", "shard"], name="scheduler_jobtally_unique_state"
            ),
        ]

    def __str__(self):
        return f"active={self.is_active} enabled={self.is_enabled} paused={self.is_paused}: {self.jobs}"


# The operator's tools (audit trail, run logs, notifications) have their tables in a module of
# their own; importing them here is what registers them with the app.
from scheduler.operator_models import (  # noqa: E402, F401
    ExecutionLog,
    JobAlertState,
    JobAuditEntry,
    NotificationChannel,
    NotificationDelivery,
    NotificationSubscription,
    NotifierCursor,
)

"""The scheduler's data model: task functions, jobs, their executions, leases and processes."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from scheduler.enums import TROUBLE_STATUSES, ExecutionStatus, ExecutionTrigger, JobState
from scheduler.querysets import (
    JOB_STATE_FILTERS,
    ExecutionQuerySet,
    InstanceQuerySet,
    JobQuerySet,
    LeaseQuerySet,
    TaskFunctionQuerySet,
    alive_cutoff,
)

MAX_INSTANCES_LIMIT = 10


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
    """How a job's schedule is expressed; ids 1 and 2 are part of the API."""

    INTERVAL = 1
    CRON = 2

    id = models.PositiveSmallIntegerField(primary_key=True)
    name = models.CharField(max_length=20, unique=True)
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["id"]

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
    history_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Keep at most this many finished executions of this job; empty for no cap.",
    )
    is_enabled = models.BooleanField(default=True)
    is_paused = models.BooleanField(default=False)
    pause_reason = models.TextField(blank=True)
    is_active = models.BooleanField(default=True, help_text="False once deleted (soft delete).")
    next_run_time = models.DateTimeField(null=True, blank=True)
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
            # The engine's only read of jobs: due rows of jobs that can fire.
            models.Index(
                fields=["next_run_time"],
                name="scheduler_job_due_idx",
                condition=JOB_STATE_FILTERS[JobState.SCHEDULED],
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
                ),
                name="scheduler_job_schedule_matches_type",
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
    def interval_total_seconds(self) -> int:
        return interval_total_seconds(*(getattr(self, f) for f in self.INTERVAL_FIELDS))

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


class JobExecution(models.Model):
    """One run of a job, from the moment it is due (or asked for) to its outcome."""

    job = models.ForeignKey(ScheduledJob, on_delete=models.CASCADE, related_name="executions")
    status = models.CharField(max_length=10, choices=ExecutionStatus.choices, default=ExecutionStatus.PENDING)
    trigger = models.CharField(max_length=10, choices=ExecutionTrigger.choices)
    scheduled_time = models.DateTimeField(help_text="The fire time (or the request time, if manual).")
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

    objects = ExecutionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["job", "-created_at"], name="scheduler_exec_job_recent_idx"),
            models.Index(fields=["status", "created_at"], name="scheduler_exec_status_idx"),
            models.Index(
                fields=["created_at"],
                name="scheduler_exec_unclaimed_idx",
                condition=Q(status=ExecutionStatus.PENDING, instance_id=""),
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
            models.UniqueConstraint(
                fields=["job", "scheduled_time"],
                condition=Q(trigger=ExecutionTrigger.SCHEDULED),
                name="scheduler_exec_unique_scheduled_run",
            ),
        ]

    def __str__(self):
        return f"{self.job} @ {self.scheduled_time:%Y-%m-%d %H:%M:%S} ({self.status})"


class JobLease(models.Model):
    """A lease on one of a job's max_instances slots, held while an execution runs."""

    job = models.ForeignKey(ScheduledJob, on_delete=models.CASCADE, related_name="leases")
    execution = models.OneToOneField(JobExecution, on_delete=models.CASCADE, related_name="lease")
    locked_by = models.CharField(max_length=100, help_text="Scheduler instance id.")
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

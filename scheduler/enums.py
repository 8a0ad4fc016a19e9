"""The scheduler's vocabularies: execution statuses and triggers, job states and overlap policies."""

from django.db import models


class ExecutionStatus(models.TextChoices):
    PENDING = "pending"
    # Due while the job had max_instances runs in progress, kept by its overlap policy until a
    # slot frees: no lease, no process; it counts against nothing until it starts.
    WAITING = "waiting"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    TIMED_OUT = "timed_out", "timed out"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    MISSED = "missed"


# A run still in progress or still to start: it must not be deleted.
UNFINISHED_STATUSES = (ExecutionStatus.PENDING, ExecutionStatus.WAITING, ExecutionStatus.RUNNING)
FINISHED_STATUSES = tuple(s for s in ExecutionStatus if s not in UNFINISHED_STATUSES)
# Runs that ended badly and count as failures: retried (maxRetries), counted by pauseAfterFailures.
FAILURE_STATUSES = (ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT)
# Runs whose task function was called (or refused at the start) to an outcome: they have a duration.
RAN_STATUSES = (ExecutionStatus.SUCCESS, *FAILURE_STATUSES)
STARTED_STATUSES = (ExecutionStatus.RUNNING, *RAN_STATUSES)
# A run that may still be cancelled.
CANCELLABLE_STATUSES = UNFINISHED_STATUSES
# Runs that ended without success: what notifications are about.
TROUBLE_STATUSES = (*FAILURE_STATUSES, ExecutionStatus.MISSED, ExecutionStatus.SKIPPED)


class ExecutionTrigger(models.TextChoices):
    SCHEDULED = "scheduled"
    MANUAL = "manual"
    RETRY = "retry"
    # A past fire time run on request (services.backfills): its own max_instances slots, never missed.
    BACKFILL = "backfill"


# Triggers whose (job, scheduled_time) is a fire time of the schedule: each runs at most once,
# whichever of them ran it (the partial unique constraint on executions).
FIRE_TIME_TRIGGERS = (ExecutionTrigger.SCHEDULED, ExecutionTrigger.BACKFILL)


class JobState(models.TextChoices):
    """Where a job stands; only a scheduled job fires (see ScheduledJob.state)."""

    SCHEDULED = "scheduled"
    PAUSED = "paused"
    DISABLED = "disabled"
    DELETED = "deleted"


class OverlapPolicy(models.TextChoices):
    """What happens to a run that is due while its job already has max_instances runs in progress."""

    SKIP = "skip", "skip: record it skipped"
    BUFFER_ONE = "buffer_one", "buffer one: keep one run waiting, skip later ones"
    BUFFER_ALL = "buffer_all", "buffer all: every run waits its turn, in fire-time order"
    CANCEL_OTHER = "cancel_other", "cancel other: ask the oldest run to stop, then start"
    TERMINATE_OTHER = "terminate_other", "terminate other: stop the oldest run at once where possible, then start"
    ALLOW_ALL = "allow_all", "allow all: no limit"


# The policies that keep a run waiting when the job is full, and how many runs each lets wait.
BUFFER_LIMIT = 1000
OVERLAP_WAITING_LIMIT = {
    OverlapPolicy.BUFFER_ONE: 1,
    OverlapPolicy.BUFFER_ALL: BUFFER_LIMIT,
    OverlapPolicy.CANCEL_OTHER: 1,
    OverlapPolicy.TERMINATE_OTHER: 1,
}


class ChangeSource(models.TextChoices):
    """Through what a job was changed (its audit trail says)."""

    ADMIN = "admin"
    API = "api"
    DASHBOARD = "dashboard"
    COMMAND_LINE = "command_line", "command line"
    CODE_SYNC = "code_sync", "code sync"
    SCHEDULER = "scheduler"  # the engine itself (a job whose schedule has no next fire time is paused)
    CODE = "code"  # a service called from Python with no other source declared


class NotificationKind(models.TextChoices):
    EMAIL = "email"
    WEBHOOK = "webhook"


class NotificationEvent(models.TextChoices):
    FAILED = "failed", "run failed"
    RECOVERED = "recovered"
    MISSED = "missed", "runs missed"
    SKIPPED = "skipped", "runs skipped"
    DEADMAN = "deadman", "dead-man: no successful run"
    TEST = "test", "test notification"


# The events a subscription chooses among (a test notification goes to one channel on request).
SUBSCRIBABLE_EVENTS = tuple(e for e in NotificationEvent if e != NotificationEvent.TEST)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"  # waiting for its first attempt or a retry
    SENDING = "sending"  # claimed by a scheduler process
    SENT = "sent"
    FAILED = "failed"  # every attempt failed; see last_error

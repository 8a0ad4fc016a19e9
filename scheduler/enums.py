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


class ExecutionTrigger(models.TextChoices):
    SCHEDULED = "scheduled"
    MANUAL = "manual"
    RETRY = "retry"


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

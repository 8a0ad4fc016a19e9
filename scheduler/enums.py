"""The scheduler's vocabularies: execution statuses and triggers, and job states."""

from django.db import models


class ExecutionStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"
    MISSED = "missed"


# A run still in progress: it holds (or is about to take) a lease and must not be deleted.
UNFINISHED_STATUSES = (ExecutionStatus.PENDING, ExecutionStatus.RUNNING)
FINISHED_STATUSES = tuple(s for s in ExecutionStatus if s not in UNFINISHED_STATUSES)
# Runs whose task function was called (or refused at the start): they have a duration.
RAN_STATUSES = (ExecutionStatus.SUCCESS, ExecutionStatus.FAILED)
STARTED_STATUSES = (ExecutionStatus.RUNNING, *RAN_STATUSES)


class ExecutionTrigger(models.TextChoices):
    SCHEDULED = "scheduled"
    MANUAL = "manual"


class JobState(models.TextChoices):
    """Where a job stands; only a scheduled job fires (see ScheduledJob.state)."""

    SCHEDULED = "scheduled"
    PAUSED = "paused"
    DISABLED = "disabled"
    DELETED = "deleted"

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
# Runs that ended without success: what notifications are about.
TROUBLE_STATUSES = (ExecutionStatus.FAILED, ExecutionStatus.MISSED, ExecutionStatus.SKIPPED)


class ExecutionTrigger(models.TextChoices):
    SCHEDULED = "scheduled"
    MANUAL = "manual"


class JobState(models.TextChoices):
    """Where a job stands; only a scheduled job fires (see ScheduledJob.state)."""

    SCHEDULED = "scheduled"
    PAUSED = "paused"
    DISABLED = "disabled"
    DELETED = "deleted"


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

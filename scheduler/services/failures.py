"""What follows runs' ends: a retry of a failed run (with backoff), a pause after repeated
failures, and a wake-up when a freed slot lets a waiting run start."""

import logging
import random
from datetime import timedelta

from django.conf import settings
from django.db import transaction

from scheduler import clock
from scheduler.backends import backend
from scheduler.enums import FAILURE_STATUSES, RAN_STATUSES, ChangeSource, ExecutionStatus, ExecutionTrigger
from scheduler.models import JobExecution, ScheduledJob
from scheduler.services.audit import change_source
from scheduler.services.changes import changes_announce
from scheduler.services.jobs import job_pause

logger = logging.getLogger("scheduler.retries")


def retry_delay(backoff_seconds: int, failed_attempt: int) -> timedelta:
    """Exponential backoff with jitter: backoff x 2^(attempt - 1), capped at
    SCHEDULER_RETRY_BACKOFF_MAX, then a random half to all of it (so a fleet of jobs failing
    together does not retry together)."""
    ceiling = min(settings.SCHEDULER_RETRY_BACKOFF_MAX, backoff_seconds * 2 ** min(failed_attempt - 1, 32))
    return timedelta(seconds=ceiling * random.uniform(0.5, 1.0))


def failures_follow_up(execution_ids) -> None:
    """For runs that just failed or timed out: retry those whose job allows another attempt, and
    pause jobs that reached their pauseAfterFailures streak."""
    failed = list(
        JobExecution.objects.filter(pk__in=list(execution_ids), status__in=FAILURE_STATUSES).select_related("job")
    )
    if not failed:
        return
    _retries_schedule(failed)
    for job in {e.job_id: e.job for e in failed if e.job.pause_after_failures and e.job.can_fire}.values():
        _pause_if_failing(job)


def _retries_schedule(failed: list[JobExecution]) -> None:
    now = clock.now()
    retries = [
        JobExecution(
            job_id=e.job_id,
            status=ExecutionStatus.PENDING,
            trigger=ExecutionTrigger.RETRY,
            scheduled_time=now + retry_delay(e.job.retry_backoff, e.attempt),
            attempt=e.attempt + 1,
            retry_of=e,
            args=e.args if e.args is not None else e.job.args,
            kwargs=e.kwargs if e.kwargs is not None else e.job.kwargs,
            triggered_by_id=e.triggered_by_id,
        )
        for e in failed
        # A run someone cancelled is not retried, nor one of a job deleted since.
        if e.attempt <= e.job.max_retries and e.cancel_requested_at is None and e.job.is_active
    ]
    if not retries:
        return
    with transaction.atomic():
        # The one-to-one retry_of is the guard: two processes reaping the same failure retry it once.
        JobExecution.objects.bulk_create(retries, ignore_conflicts=True)
        changes_announce()
    for retry in retries:
        logger.info(
            "Job %s: attempt %d of execution %s failed; attempt %d at %s",
            retry.job_id,
            retry.attempt - 1,
            retry.retry_of_id,
            retry.attempt,
            retry.scheduled_time.isoformat(),
            extra={"job_id": retry.job_id, "execution_id": retry.retry_of_id},
        )


def _pause_if_failing(job: ScheduledJob) -> None:
    streak = job.pause_after_failures
    latest = list(
        JobExecution.objects.filter(job_id=job.pk, status__in=RAN_STATUSES)
        .order_by("-created_at", "-pk")
        .values_list("status", "error_message")[:streak]
    )
    if len(latest) < streak or any(status not in FAILURE_STATUSES for status, _ in latest):
        return
    reason = f"paused after {streak} consecutive failures: {latest[0][1]}"[:1000]
    with change_source(ChangeSource.SCHEDULER):  # the audit trail says the scheduler did it
        job_pause(job, reason=reason)
    logger.warning("Job %s (%s) %s", job.pk, job.name, reason, extra={"job_id": job.pk})


def slots_freed(ended_ids) -> None:
    """Wake every scheduler process at once when these ended runs freed a slot that a waiting run
    of the same job can take (rather than at the next poll)."""
    if not backend().runs_waiting():  # the common case: one look at an empty partial index
        return
    waiting = JobExecution.objects.waiting()
    jobs = JobExecution.objects.filter(pk__in=list(ended_ids)).values("job_id")
    if waiting.filter(job_id__in=jobs).exists():
        changes_announce()

"""History retention: finished executions older than the retention period, or beyond a job's
history_limit, deleted in short batches; runs in progress are never touched."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction

from scheduler import clock
from scheduler.models import JobExecution

CLEANUP_BATCH_SIZE = 1000

logger = logging.getLogger("scheduler.retention")


def executions_cleanup(
    *, older_than_days: int | None = None, batch_size: int = CLEANUP_BATCH_SIZE, dry_run: bool = False
) -> int:
    """Apply the retention policy; return how many executions were (or, dry run, would be) deleted.

    Two rules, in one run: finished executions created more than `older_than_days` ago
    (default SCHEDULER_HISTORY_RETENTION_DAYS) go, and so do the finished executions of a job
    with a history_limit beyond its newest `history_limit`. Deletes go in short batches so the
    table is never locked for long. Pending and running executions are never touched, however old.
    """
    days = settings.SCHEDULER_HISTORY_RETENTION_DAYS if older_than_days is None else int(older_than_days)
    if days < 0:
        raise ValueError("older_than_days must be 0 or more")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    cutoff = clock.now() - timedelta(days=days)
    old = JobExecution.objects.finished().filter(created_at__lt=cutoff)
    if dry_run:
        # Old rows are each job's oldest, so deleting them first never changes which rows are a
        # job's newest N: the rows the cap removes afterwards are exactly the recent ones past it.
        return old.count() + JobExecution.objects.beyond_history_limit().filter(created_at__gte=cutoff).count()
    deleted = _delete_in_batches(old, batch_size)
    deleted += executions_cleanup_over_limit(batch_size=batch_size)
    logger.info(
        "History cleanup deleted %d executions (older than %d days or beyond a job's history limit)",
        deleted,
        days,
    )
    return deleted


def executions_cleanup_over_limit(*, batch_size: int = CLEANUP_BATCH_SIZE, dry_run: bool = False) -> int:
    """Delete the finished executions beyond each job's history_limit, newest N kept, in batches."""
    if dry_run:
        return JobExecution.objects.beyond_history_limit().count()
    return _delete_in_batches(JobExecution.objects.beyond_history_limit(), batch_size)


def _delete_in_batches(queryset, batch_size: int) -> int:
    deleted = 0
    while True:
        batch = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not batch:
            return deleted
        with transaction.atomic():
            # finished() again: a row picked for the batch is re-checked at delete time.
            _, per_model = JobExecution.objects.finished().filter(pk__in=batch).delete()
        deleted += per_model.get(JobExecution._meta.label, 0)
        if len(batch) < batch_size:
            return deleted

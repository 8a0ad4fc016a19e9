"""History retention: finished executions older than the retention period, or beyond a job's
history_limit, deleted in short batches; runs in progress are never touched.

The age rule walks the oldest rows in (created_at, id) order through their index, each batch
resuming where the last one stopped, so no batch rereads what earlier ones deleted (the old
"oldest 1,000 by id, again" query scanned every dead row of the batches before it: about 1,500
rows a second on a long history). The history-limit rule looks at the jobs that have a limit, a
chunk of jobs at a time, so its work is their rows once, not the whole table per batch.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction

from scheduler import clock
from scheduler.backends import backend
from scheduler.models import JobExecution, ScheduledJob

CLEANUP_BATCH_SIZE = 5000
# Jobs with a history_limit whose rows one window query ranks.
LIMITED_JOBS_PER_CHUNK = 500

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
    if dry_run:
        # Old rows are each job's oldest, so deleting them first never changes which rows are a
        # job's newest N: the rows the cap removes afterwards are exactly the recent ones past it.
        old = JobExecution.objects.finished().filter(created_at__lt=cutoff).count()
        return old + executions_cleanup_over_limit(dry_run=True, created_since=cutoff)
    deleted = executions_delete_older_than(cutoff, batch_size=batch_size)
    deleted += executions_cleanup_over_limit(batch_size=batch_size)
    logger.info(
        "History cleanup deleted %d executions (older than %d days or beyond a job's history limit)",
        deleted,
        days,
    )
    return deleted


def executions_delete_older_than(cutoff, *, batch_size: int = CLEANUP_BATCH_SIZE) -> int:
    """Delete the finished executions created before `cutoff`, `batch_size` rows walked per transaction."""
    deleted, after = 0, None
    while True:
        batch, after = backend().executions_delete_old(cutoff=cutoff, after=after, batch_size=batch_size)
        deleted += batch
        if after is None:
            return deleted


def executions_cleanup_over_limit(
    *, batch_size: int = CLEANUP_BATCH_SIZE, dry_run: bool = False, created_since=None
) -> int:
    """Delete (or count) the finished executions beyond each job's history_limit, newest N kept."""
    limited = ScheduledJob.objects.filter(history_limit__isnull=False).order_by("pk").values_list("pk", flat=True)
    total, after = 0, 0
    while True:
        chunk = list(limited.filter(pk__gt=after)[:LIMITED_JOBS_PER_CHUNK])
        if not chunk:
            return total
        after = chunk[-1]
        beyond = JobExecution.objects.filter(job_id__in=chunk).beyond_history_limit()
        if dry_run:
            total += beyond.filter(created_at__gte=created_since).count() if created_since else beyond.count()
            continue
        ids = list(beyond.values_list("pk", flat=True))
        for start in range(0, len(ids), batch_size):
            total += _delete_finished(ids[start : start + batch_size])


def _delete_finished(ids) -> int:
    with transaction.atomic():
        # finished() again: a row picked for the batch is re-checked at delete time.
        _, per_model = JobExecution.objects.finished().filter(pk__in=ids).delete()
    return per_model.get(JobExecution._meta.label, 0)

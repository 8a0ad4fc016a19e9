"""Leases: a job's max_instances slots, taken with a run's claim, renewed while it runs, released
when it ends, and reaped when the process holding one stops renewing it."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count
from django.db.models.functions import Now

from scheduler import clock
from scheduler.backends import backend
from scheduler.enums import ExecutionStatus
from scheduler.models import JobLease
from scheduler.services.executions import execution_lost

logger = logging.getLogger("scheduler.leases")
LEASE_EXPIRED = "lease expired: the process running it stopped"
REAP_BATCH = 500


def lease_ttl() -> timedelta:
    return timedelta(seconds=settings.SCHEDULER_LOCK_TTL)


def lease_expiry(now: datetime) -> datetime:
    """When a lease taken or renewed at `now` runs out (SCHEDULER_LOCK_TTL later)."""
    return now + lease_ttl()


def leases_held(job_ids, now: datetime, *, backfill: bool = False) -> dict[int, int]:
    """Live leases per job id, across all processes; jobs holding none are absent. Backfilled runs
    hold slots apart from the live schedule's: `backfill` chooses which are counted."""
    return dict(
        JobLease.objects.live(now)
        .filter(job_id__in=set(job_ids), is_backfill=backfill)
        .values_list("job_id")
        .annotate(n=Count("pk"))
    )


def leases_renew(execution_ids, *, now=None) -> int:
    """Push back the expiry of live runs' leases, so a healthy long run is never reclaimed.

    Without `now`, the expiry is computed by the database's own clock: a Celery worker, which does
    not measure its host clock's offset, must not write an expiry that is already past.
    """
    expires_at = lease_expiry(now) if now is not None else Now() + lease_ttl()
    return backend().with_ids(JobLease.objects.all(), execution_ids, field="execution_id").update(expires_at=expires_at)


def lease_confirm(execution_id: int, *, instance_id: str, now=None) -> bool:
    """Whether this process still holds the run's lease and the run is still pending, renewing the
    lease if so: a process that was frozen asks before it starts a run it claimed long ago, which
    the reaper may have failed or another process may have run meanwhile."""
    now = now or clock.now()
    return bool(
        JobLease.objects.filter(
            execution_id=execution_id,
            locked_by=instance_id,
            expires_at__gt=now,
            execution__status=ExecutionStatus.PENDING,
        ).update(expires_at=lease_expiry(now))
    )


def leases_release(execution_ids, *, instance_id: str) -> None:
    """Give up the leases this process holds for runs it hands back unstarted."""
    JobLease.objects.of_executions(execution_ids).filter(locked_by=instance_id).delete()


def leases_reap(*, now=None) -> int:
    """Fail the executions whose lease expired and free their max_instances slots.

    Also sweeps leases left behind by runs that finished (a process that stopped between
    recording a run's end and deleting its lease), so they stop counting against max_instances.
    """
    now = now or clock.now()
    JobLease.objects.of_finished_runs().delete()
    reaped = 0
    for lease in JobLease.objects.expired(now).select_related("execution")[:REAP_BATCH]:
        execution = lease.execution
        if execution_lost(execution, reason=f"{LEASE_EXPIRED} (held by {lease.locked_by})") is not None:
            reaped += 1
            logger.warning(
                "Execution %s of job %s ended %s: %s (held by %s)",
                execution.pk,
                lease.job_id,
                execution.status,
                LEASE_EXPIRED,
                lease.locked_by,
                extra={"job_id": lease.job_id, "execution_id": execution.pk},
            )
        JobLease.objects.filter(pk=lease.pk, expires_at__lte=now).delete()
    return reaped

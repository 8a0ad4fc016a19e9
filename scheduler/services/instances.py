"""Scheduler processes: registration, heartbeats, lease renewal and the reaping of expired leases."""
import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from scheduler.models import ExecutionStatus, JobExecution, ScheduledJobLock, SchedulerInstance
from scheduler.services.executions import InvalidTransition, execution_fail

logger = logging.getLogger("scheduler.instances")
LEASE_EXPIRED = "lease expired: the process running it stopped"


def instance_register(*, instance_id: str, hostname: str, pid: int) -> SchedulerInstance:
    now = timezone.now()
    return SchedulerInstance.objects.create(
        instance_id=instance_id, hostname=hostname, pid=pid, started_at=now, last_heartbeat=now
    )


def instance_heartbeat(instance_id: str, *, running_execution_ids=()) -> None:
    """Record that the process is alive and renew the leases of the runs it is executing."""
    now = timezone.now()
    with transaction.atomic():
        SchedulerInstance.objects.filter(instance_id=instance_id).update(last_heartbeat=now)
        if running_execution_ids:
            leases_renew(running_execution_ids, now=now)


def instance_stop(instance_id: str) -> None:
    SchedulerInstance.objects.filter(instance_id=instance_id).update(stopped_at=timezone.now())


def leases_renew(execution_ids, *, now=None) -> int:
    """Push back the expiry of live runs' leases, so a healthy long run is never reclaimed."""
    now = now or timezone.now()
    return ScheduledJobLock.objects.filter(execution_id__in=list(execution_ids)).update(
        expires_at=now + timedelta(seconds=settings.SCHEDULER_LOCK_TTL)
    )


def leases_reap(*, now=None) -> int:
    """Fail the executions whose lease expired and free their max_instances slots.

    Also sweeps leases left behind by runs that finished (a process that stopped between
    recording a run's end and deleting its lease), so they stop counting against max_instances.
    """
    now = now or timezone.now()
    ScheduledJobLock.objects.exclude(
        execution__status__in=(ExecutionStatus.PENDING, ExecutionStatus.RUNNING)
    ).delete()
    reaped = 0
    for lock in ScheduledJobLock.objects.expired(now).select_related("execution")[:500]:
        execution = lock.execution
        try:
            execution_fail(execution, error=f"{LEASE_EXPIRED} (held by {lock.locked_by})")
            reaped += 1
            logger.warning(
                "Execution %s of job %s failed: %s (held by %s)",
                execution.pk, lock.job_id, LEASE_EXPIRED, lock.locked_by,
                extra={"job_id": lock.job_id, "execution_id": execution.pk},
            )
        except InvalidTransition:
            pass
        ScheduledJobLock.objects.filter(pk=lock.pk, expires_at__lte=now).delete()
    return reaped


def executions_abandon(execution_ids, *, reason: str) -> int:
    """Fail runs this process started but could not finish before it had to stop."""
    failed = 0
    for execution in JobExecution.objects.filter(pk__in=list(execution_ids), status=ExecutionStatus.RUNNING):
        try:
            execution_fail(execution, error=reason)
            failed += 1
        except InvalidTransition:
            pass
    return failed

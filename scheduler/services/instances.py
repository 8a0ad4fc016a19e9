"""Scheduler processes: registration, heartbeats (which renew their runs' leases) and stopping."""
from django.db import transaction
from django.utils import timezone

from scheduler.enums import ExecutionStatus
from scheduler.models import JobExecution, SchedulerInstance
from scheduler.services.executions import InvalidTransition, execution_fail
from scheduler.services.leases import leases_renew


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

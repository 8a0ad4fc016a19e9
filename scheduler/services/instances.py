"""Scheduler processes: registration, heartbeats (which renew their runs' leases), the clock offset
from the database, and stopping."""

import logging
import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from scheduler import clock
from scheduler.backends import backend
from scheduler.enums import ExecutionStatus
from scheduler.models import JobExecution, SchedulerInstance, clock_offset_skewed
from scheduler.services.executions import execution_lost
from scheduler.services.leases import leases_renew

logger = logging.getLogger("scheduler.engine")


def clock_offset_measure() -> float | None:
    """Read the database's clock, set this process's offset from it (scheduler.clock, unless
    SCHEDULER_CLOCK_SOURCE is "host") and return it in seconds (database minus host), or None
    where the database has no clock of its own.

    The host time is taken as the middle of the round trip, so the error is at most half of it.
    """
    before, before_monotonic = timezone.now(), time.monotonic()
    database_now = backend().database_now()
    after, after_monotonic = timezone.now(), time.monotonic()
    if database_now is None:
        return None
    if settings.SCHEDULER_CLOCK_SOURCE == "database":
        clock.synchronise(database_now, (before_monotonic + after_monotonic) / 2)
    return (database_now - (before + (after - before) / 2)).total_seconds()


def clock_skew_report(instance_id: str, offset_seconds: float | None) -> None:
    if clock_offset_skewed(offset_seconds):
        logger.warning(
            "Scheduler %s: this host's clock differs from the database's by %.1f s (the database is "
            "%s); scheduling follows the database's clock, but fix the host's time (NTP).",
            instance_id,
            abs(offset_seconds),
            "ahead" if offset_seconds > 0 else "behind",
            extra={"instance_id": instance_id},
        )


def instance_register(
    *, instance_id: str, hostname: str, pid: int, clock_offset: float | None = None
) -> SchedulerInstance:
    now = clock.now()
    return SchedulerInstance.objects.create(
        instance_id=instance_id,
        hostname=hostname,
        pid=pid,
        started_at=now,
        last_heartbeat=now,
        clock_offset=clock_offset,
    )


def instance_heartbeat(instance_id: str, *, running_execution_ids=(), clock_offset: float | None = None) -> None:
    """Record that the process is alive (and its clock offset) and renew the leases of the runs it
    is executing."""
    now = clock.now()
    fields = {"last_heartbeat": now}
    if clock_offset is not None:
        fields["clock_offset"] = clock_offset
    with transaction.atomic():
        SchedulerInstance.objects.filter(instance_id=instance_id).update(**fields)
        if running_execution_ids:
            leases_renew(running_execution_ids, now=now)


def instance_stop(instance_id: str) -> None:
    SchedulerInstance.objects.filter(instance_id=instance_id).update(stopped_at=clock.now())


def executions_abandon(execution_ids, *, reason: str) -> int:
    """End runs this process started but could not finish before it had to stop: failed (and
    retried, if their job says so), or cancelled where a cancel had been asked for."""
    ended = 0
    for execution in JobExecution.objects.filter(pk__in=list(execution_ids), status=ExecutionStatus.RUNNING):
        if execution_lost(execution, reason=reason) is not None:
            ended += 1
    return ended

"""Backfill: run the fire times a job would have had in a past range, each at most once."""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django.db import transaction

from scheduler import clock
from scheduler.enums import FIRE_TIME_TRIGGERS, ExecutionStatus, ExecutionTrigger, OverlapPolicy
from scheduler.models import JobExecution, ScheduledJob
from scheduler.services.changes import changes_announce
from scheduler.services.schedules import Schedule

logger = logging.getLogger("scheduler.backfills")
MAX_BACKFILL_RUNS = 10_000
# buffer_all: one after another within max_instances slots of their own; allow_all: all at once.
BACKFILL_POLICIES = (OverlapPolicy.BUFFER_ALL, OverlapPolicy.ALLOW_ALL)
BACKFILL_WAITING_REASON = "waiting: backfilled, runs in fire-time order within max_instances"


@dataclass(frozen=True)
class Backfill:
    """What a backfill queued (or would queue, for a dry run)."""

    queued: int
    already_ran: int
    fire_times: list[datetime]  # the ones queued


def job_backfill(
    job: ScheduledJob,
    start: datetime,
    end: datetime,
    *,
    user=None,
    overlap_policy: str = OverlapPolicy.BUFFER_ALL,
    dry_run: bool = False,
    now: datetime | None = None,
) -> Backfill:
    """Queue a run of each fire time of `job` in (start, end] that has not run (as a scheduled or a
    backfilled run), with trigger backfill and the fire time as its scheduled time.

    The fire times come from the same Schedule as the engine's (window and calendar included).
    buffer_all (default) queues them waiting: they start oldest first within max_instances slots
    of their own, so they never delay the live schedule nor are delayed by it; allow_all queues
    them to start at once. They are never missed and never coalesced.
    """
    now = now or clock.now()
    if overlap_policy not in BACKFILL_POLICIES:
        raise ValidationError(
            {
                "overlap_policy": f"A backfill runs with overlap policy buffer_all (one after another, the "
                f"default) or allow_all (all at once), not {overlap_policy!r}."
            }
        )
    if start >= end:
        raise ValidationError({"end": "end must be after start (the range is (start, end]: start excluded)."})
    if end > now:
        raise ValidationError(
            {"end": f"A backfill covers the past only: end ({end.isoformat()}) is after now ({now.isoformat()})."}
        )
    with transaction.atomic():
        current = ScheduledJob.objects.select_for_update(of=("self",)).select_related("exclude_calendar").get(pk=job.pk)
        if not current.is_active:
            raise ValidationError({"job": "This job was deleted; it cannot run."})
        schedule = Schedule.of(current)
        anchor = current.next_run_time or current.last_run_time or current.start_at or current.created_at
        try:
            times = schedule.between(start, end, anchor=anchor, limit=MAX_BACKFILL_RUNS + 1)
        except (ValueError, OverflowError) as exc:
            raise ValidationError({"start": f"This job's schedule has no fire times in that range ({exc})."}) from None
        if len(times) > MAX_BACKFILL_RUNS:
            raise ValidationError(
                {
                    "end": f"The range holds more than {MAX_BACKFILL_RUNS:,} fire times of this job (from "
                    f"{times[0].isoformat()} on); backfill a shorter range at a time."
                }
            )
        ran = {
            t.astimezone(UTC)
            for t in JobExecution.objects.filter(
                job_id=current.pk, trigger__in=FIRE_TIME_TRIGGERS, scheduled_time__gt=start, scheduled_time__lte=end
            ).values_list("scheduled_time", flat=True)
        }
        queued = [t for t in times if t.astimezone(UTC) not in ran]
        if not dry_run and queued:
            waits = overlap_policy == OverlapPolicy.BUFFER_ALL
            JobExecution.objects.bulk_create(
                [
                    JobExecution(
                        job_id=current.pk,
                        status=ExecutionStatus.WAITING if waits else ExecutionStatus.PENDING,
                        trigger=ExecutionTrigger.BACKFILL,
                        scheduled_time=fire_time,
                        error_message=BACKFILL_WAITING_REASON if waits else "",
                        triggered_by=user if user is not None and user.is_authenticated else None,
                        args=current.args,
                        kwargs=current.kwargs,
                    )
                    for fire_time in queued
                ],
                batch_size=1000,
                # The job's row lock keeps claims out meanwhile; the unique constraint is the last guard.
                ignore_conflicts=True,
            )
            changes_announce(job_id=current.pk)
    if not dry_run and queued:
        logger.info(
            "Job %s: backfilled %d fire times in (%s, %s] (%d had run)",
            current.pk,
            len(queued),
            start.isoformat(),
            end.isoformat(),
            len(times) - len(queued),
            extra={"job_id": current.pk},
        )
    return Backfill(queued=len(queued), already_ran=len(times) - len(queued), fire_times=queued)

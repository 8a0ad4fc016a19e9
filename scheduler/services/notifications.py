"""Notifications: channels and subscriptions, and finding the events that notify (a run failed, the job
recovered, runs missed or skipped, a dead-man alert) in what the runs recorded.

Events are found by the scheduler processes' notifier threads from committed rows only, so a
notification is always about something that happened (after commit), and never on a run's own
path. One process at a time looks (the row lock of the notifier cursor, taken with SKIP LOCKED:
the others go on to sending), and each event becomes one outbox row per channel under a unique
(event key, channel), so an event read twice is still sent once (services.deliveries sends them).

Only jobs in trouble get a JobAlertState row: a failure streak to close with a "recovered", or a
dead-man deadline to watch. Everything read per pass is bounded and indexed: the runs that ended
badly since the last pass (a partial index), jobs overdue by their persisted next run time (the
due index) and the alert states due for a check.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from scheduler import clock
from scheduler.enums import (
    FAILURE_STATUSES,
    TROUBLE_STATUSES,
    DeliveryStatus,
    ExecutionStatus,
    NotificationEvent,
    NotificationKind,
)
from scheduler.models import (
    JobAlertState,
    JobExecution,
    NotificationChannel,
    NotificationDelivery,
    NotificationSubscription,
    NotifierCursor,
    ScheduledJob,
)
from scheduler.services.schedules import Schedule

logger = logging.getLogger("scheduler.notifications")
E = NotificationEvent

CURSOR = "runs"
# Runs that ended badly are read again this far back on every pass: a run's end can commit a
# little after the time it records (a batch, a reconnect), and Celery workers' clocks may lag.
RESCAN = timedelta(minutes=5)
# A notifier that was stopped longer than this does not report what ended before.
MAX_LOOKBACK = timedelta(hours=24)
SCAN_PAGE = 2000
OVERDUE_PAGE = 500
DEADMAN_PAGE = 500
# How often a job whose dead-man alert went out is looked at again (to notice it recover).
DEADMAN_RECHECK = timedelta(seconds=60)


# --- configuration ---------------------------------------------------------------------------------


def channel_validate(kind: str, target: str) -> str:
    """The channel's target, normalised; ValidationError naming `target` when it is not usable."""
    target = (target or "").strip()
    if kind == NotificationKind.EMAIL:
        addresses = [a.strip() for a in target.split(",") if a.strip()]
        if not addresses:
            raise ValidationError({"target": "Give at least one email address (several: separated by commas)."})
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                raise ValidationError({"target": f"{address!r} is not an email address."}) from None
        return ", ".join(addresses)
    if kind == NotificationKind.WEBHOOK:
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError(
                {"target": "A webhook is an http:// or https:// URL, e.g. https://hooks.slack.com/..."}
            )
        return target
    raise ValidationError({"kind": f"Unknown channel kind {kind!r}: use email or webhook."})


def channel_save(channel: NotificationChannel) -> NotificationChannel:
    """Create or change a channel after checking its target."""
    channel.target = channel_validate(channel.kind, channel.target)
    channel.full_clean(exclude=["target"])
    channel.save()
    return channel


def subscription_save(subscription: NotificationSubscription) -> NotificationSubscription:
    """Create or change a subscription; it must choose at least one event."""
    if not any(subscription.wants(event) for event in _SUBSCRIBABLE):
        raise ValidationError("Choose at least one event to notify about.")
    subscription.full_clean()
    subscription.save()
    return subscription


def notification_test_send(channel: NotificationChannel, *, user=None) -> NotificationDelivery:
    """Queue a test notification to one channel; a scheduler process sends it like any other."""
    now = clock.now()
    who = user.get_username() if user is not None and user.is_authenticated else "someone"
    text = f"Test notification from the job scheduler, asked for by {who} at {now:%Y-%m-%d %H:%M:%S} UTC."
    return NotificationDelivery.objects.create(
        event_key=f"test:{channel.pk}:{now.isoformat()}",
        event=E.TEST,
        channel=channel,
        subject="[scheduler] Test notification",
        text=text,
        payload={"text": text, "event": E.TEST, "job": None, "execution": None, "occurredAt": now.isoformat()},
        next_attempt_at=now,
        created_at=now,
    )


def deliveries_retry(delivery_ids) -> int:
    """Send failed deliveries again now (an operator's retry), with a fresh set of attempts."""
    return NotificationDelivery.objects.filter(pk__in=list(delivery_ids), status=DeliveryStatus.FAILED).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=clock.now(), claimed_by="", lease_expires_at=None
    )


_SUBSCRIBABLE = (E.FAILED, E.RECOVERED, E.MISSED, E.SKIPPED, E.DEADMAN)


# --- who is notified of what --------------------------------------------------------------------------


class Subscriptions:
    """The live subscriptions, read once per pass (they are configuration: a handful of rows)."""

    def __init__(self, rows: list[NotificationSubscription]):
        self.every_job = [s for s in rows if s.job_id is None]
        self.by_job: dict[int, list[NotificationSubscription]] = defaultdict(list)
        for row in rows:
            if row.job_id is not None:
                self.by_job[row.job_id].append(row)

    def __bool__(self):
        return bool(self.every_job or self.by_job)

    def of(self, job_id: int, event: str) -> list[NotificationSubscription]:
        return [s for s in (*self.every_job, *self.by_job.get(job_id, ())) if s.wants(event)]

    def channels(self, job_id: int, event: str, at: datetime) -> list[int]:
        """Channels to notify of an event that happened at `at`: a subscription made later is not
        told of it."""
        return sorted({s.channel_id for s in self.of(job_id, event) if s.created_at <= at})

    def watches(self, job_id: int, event: str) -> bool:
        return bool(self.of(job_id, event))

    def deadman_grace(self, job_id: int) -> timedelta | None:
        graces = [s.deadman_grace for s in self.of(job_id, E.DEADMAN)]
        return timedelta(seconds=min(graces)) if graces else None

    def deadman_for_every_job(self) -> bool:
        return any(s.on_deadman for s in self.every_job)

    def deadman_jobs(self) -> list[int]:
        return [job_id for job_id, rows in self.by_job.items() if any(s.on_deadman for s in rows)]

    def smallest_deadman_grace(self) -> timedelta | None:
        graces = [
            s.deadman_grace for s in (*self.every_job, *(r for v in self.by_job.values() for r in v)) if s.on_deadman
        ]
        return timedelta(seconds=min(graces)) if graces else None


@dataclass
class Event:
    key: str
    event: str
    job_id: int
    job_name: str
    execution_id: int | None
    at: datetime
    subject: str
    text: str
    execution: dict | None = None


class Pass:
    """One pass of the notifier: the events found, then written as outbox rows in one statement."""

    def __init__(self, subscriptions: Subscriptions, now: datetime):
        self.subscriptions = subscriptions
        self.now = now
        self.rows: list[NotificationDelivery] = []

    def add(self, event: Event) -> None:
        channels = self.subscriptions.channels(event.job_id, event.event, event.at)
        link = _link(
            f"/scheduler/executions/{event.execution_id}/" if event.execution_id else f"/scheduler/jobs/{event.job_id}/"
        )
        text = f"{event.text}\n{link}" if link else event.text
        payload = {
            "text": text,
            "event": event.event,
            "job": {"id": event.job_id, "name": event.job_name},
            "execution": event.execution,
            "occurredAt": event.at.isoformat(),
            "url": link or None,
        }
        for channel_id in channels:
            self.rows.append(
                NotificationDelivery(
                    event_key=event.key,
                    event=event.event,
                    channel_id=channel_id,
                    job_id=event.job_id,
                    execution_id=event.execution_id,
                    subject=event.subject[:300],
                    text=text,
                    payload=payload,
                    next_attempt_at=self.now,
                    created_at=self.now,
                )
            )

    def write(self) -> int:
        if not self.rows:
            return 0
        keys = {(row.event_key, row.channel_id) for row in self.rows}
        existing = set(
            NotificationDelivery.objects.filter(event_key__in={k for k, _ in keys}).values_list(
                "event_key", "channel_id"
            )
        )
        fresh = []
        for row in self.rows:  # an event seen twice in a pass (a window's runs) is one row
            if (row.event_key, row.channel_id) not in existing:
                existing.add((row.event_key, row.channel_id))
                fresh.append(row)
        # ignore_conflicts: the unique (event key, channel) is the last word on "sent once".
        NotificationDelivery.objects.bulk_create(fresh, ignore_conflicts=True)
        return len(fresh)


# --- finding events ----------------------------------------------------------------------------------


def notifications_detect(*, now: datetime | None = None) -> int:
    """One pass over what happened since the last one; returns the deliveries it queued.

    Returns 0 at once when another process holds the cursor (it is making the same pass).
    """
    now = now or clock.now()
    subscriptions = Subscriptions(list(NotificationSubscription.objects.live()))
    if not subscriptions:
        # Nothing to notify, and no write (SQLite's engine shares one write lock): once a
        # subscription exists, the pass reads from where the cursor stood, at most MAX_LOOKBACK
        # back, and a subscription is never told of what ended before it was created.
        return 0
    if not NotifierCursor.objects.filter(name=CURSOR).exists():
        NotifierCursor.objects.bulk_create([NotifierCursor(name=CURSOR, scanned_to=now)], ignore_conflicts=True)
    with transaction.atomic():
        cursor = NotifierCursor.objects.select_for_update(skip_locked=True).filter(name=CURSOR).first()
        if cursor is None:
            return 0
        work = Pass(subscriptions, now)
        _runs_that_ended_badly(cursor, work)
        _jobs_overdue(work)
        _deadman_checks(work)
        _recoveries(work)
        cursor.save()
        return work.write()


def _runs_that_ended_badly(cursor: NotifierCursor, work: Pass) -> None:
    now = work.now
    if cursor.resume_at is not None:
        after = Q(finished_at__gt=cursor.resume_at) | Q(finished_at=cursor.resume_at, pk__gt=cursor.resume_id)
    else:
        after = Q(finished_at__gt=max((cursor.scanned_to or now) - RESCAN, now - MAX_LOOKBACK))
    trouble = JobExecution.objects.filter(after, status__in=TROUBLE_STATUSES, finished_at__lte=now)
    if not work.subscriptions.every_job:  # only some jobs are watched: read only theirs
        trouble = trouble.filter(job_id__in=list(work.subscriptions.by_job))
    rows = list(
        trouble.order_by("finished_at", "pk").values(
            "pk",
            "job_id",
            "job__name",
            "status",
            "trigger",
            "scheduled_time",
            "finished_at",
            "created_at",
            "error_message",
        )[:SCAN_PAGE]
    )
    if len(rows) == SCAN_PAGE:  # more to read: the next pass goes on from here
        cursor.resume_at, cursor.resume_id = rows[-1]["finished_at"], rows[-1]["pk"]
    else:
        cursor.scanned_to, cursor.resume_at, cursor.resume_id = now, None, None
    failures: dict[int, list[dict]] = defaultdict(list)
    for row in rows:
        job_id = row["job_id"]
        # failed, missed or skipped: the event of the same name; a timed-out run is a failed one
        event = E.FAILED if row["status"] in FAILURE_STATUSES else row["status"]
        if work.subscriptions.watches(job_id, event):
            work.add(_run_event(event, row))
        if event == E.FAILED:
            failures[job_id].append(row)
    _failure_streaks(failures, work)
    troubled = {row["job_id"] for row in rows if work.subscriptions.watches(row["job_id"], E.DEADMAN)}
    _deadman_watch(troubled)


def _run_event(event: str, row: dict) -> Event:
    job_id, at = row["job_id"], row["finished_at"]
    window = settings.SCHEDULER_NOTIFY_WINDOW
    # One event per job and window (the key is the same whichever run of the window is read first).
    key = f"{event}:{job_id}:{int(at.timestamp()) // window}" if window > 0 else f"{event}:{job_id}:run:{row['pk']}"
    name = row["job__name"]
    what = {E.FAILED: "failed", E.MISSED: "was missed", E.SKIPPED: "was skipped"}[event]
    reason = (row["error_message"] or "").strip().splitlines()[0][:500] if row["error_message"] else ""
    text = (
        f"Job {name!r} (id {job_id}): run #{row['pk']} ({row['trigger']}, scheduled "
        f"{row['scheduled_time']:%Y-%m-%d %H:%M:%S} UTC) {what} at {at:%Y-%m-%d %H:%M:%S} UTC"
        + (f": {reason}" if reason else ".")
    )
    return Event(
        key=key,
        event=event,
        job_id=job_id,
        job_name=name,
        execution_id=row["pk"],
        at=at,
        subject=f"[scheduler] Job {name!r}: a run {what}",
        text=text,
        execution={
            "id": row["pk"],
            "status": row["status"],
            "scheduledTime": row["scheduled_time"].isoformat(),
            "finishedAt": at.isoformat(),
            "error": row["error_message"][:2000],
        },
    )


def _failure_streaks(failures: dict[int, list[dict]], work: Pass) -> None:
    """Remember each failing job's streak, to say "recovered" at its first success after it."""
    watched = {job_id: rows for job_id, rows in failures.items() if work.subscriptions.watches(job_id, E.RECOVERED)}
    if not watched:
        return
    states = {s.job_id: s for s in JobAlertState.objects.select_for_update().filter(job_id__in=watched)}
    new = []
    for job_id, rows in watched.items():
        first = min(r["created_at"] for r in rows)
        last = max(r["finished_at"] for r in rows)
        state = states.get(job_id)
        if state is None:
            new.append(JobAlertState(job_id=job_id, failing_since=first, last_failure_at=last))
            continue
        state.failing_since = min(state.failing_since or first, first)
        state.last_failure_at = max(state.last_failure_at or last, last)
        state.save(update_fields=["failing_since", "last_failure_at"])
    JobAlertState.objects.bulk_create(new, ignore_conflicts=True)


def _deadman_watch(job_ids) -> None:
    """Look at these jobs' dead-man deadlines on this pass (those not already being watched)."""
    if not job_ids:
        return
    now = clock.now()
    JobAlertState.objects.bulk_create(
        [JobAlertState(job_id=j, deadman_check_at=now) for j in job_ids], ignore_conflicts=True
    )
    JobAlertState.objects.filter(job_id__in=list(job_ids), deadman_check_at__isnull=True).update(deadman_check_at=now)


def _jobs_overdue(work: Pass) -> None:
    """Jobs whose persisted next run is further behind than their grace: nothing is running them."""
    grace = work.subscriptions.smallest_deadman_grace()
    if grace is None:
        return
    overdue = ScheduledJob.objects.schedulable().filter(next_run_time__lt=work.now - grace)
    if not work.subscriptions.deadman_for_every_job():
        overdue = overdue.filter(pk__in=work.subscriptions.deadman_jobs())
    _deadman_watch(list(overdue.order_by("next_run_time").values_list("pk", flat=True)[:OVERDUE_PAGE]))


def _deadman_checks(work: Pass) -> None:
    """Each watched job whose check is due: alert once if no successful run came within its expected
    period plus the grace; stop watching once it is fine again."""
    now = work.now
    states = list(
        JobAlertState.objects.select_for_update(of=("self",))
        .select_related("job")
        .filter(deadman_check_at__lte=now)
        .order_by("deadman_check_at")[:DEADMAN_PAGE]
    )
    for state in states:
        job = state.job
        grace = work.subscriptions.deadman_grace(job.pk)
        if grace is None or not job.can_fire:  # no longer watched, or not expected to run
            _deadman_clear(state)
            continue
        success = _latest_success(job.pk)
        since = max(success["scheduled_time"], job.updated_at) if success else job.updated_at
        try:
            expected = Schedule.of(job).following(since)
        except (ValueError, OverflowError):  # no next fire time: the engine pauses such a job
            _deadman_clear(state)
            continue
        deadline = expected + grace
        if now < deadline:
            if state.deadman_alerted_at is not None and success is not None:
                work.add(_recovered_event(job, success, since=state.deadman_since))
            state.deadman_alerted_at, state.deadman_since, state.deadman_check_at = None, since, deadline
        elif state.deadman_alerted_at is None or state.deadman_since != since:
            work.add(_deadman_event(job, since=since, expected=expected, grace=grace, ever=success is not None))
            state.deadman_alerted_at, state.deadman_since, state.deadman_check_at = now, since, now + DEADMAN_RECHECK
        else:
            state.deadman_check_at = now + DEADMAN_RECHECK
        if state.deadman_alerted_at is None and state.failing_since is None and success is not None:
            state.delete()  # in good health: nothing left to remember
        else:
            state.save(update_fields=["deadman_alerted_at", "deadman_since", "deadman_check_at"])


def _deadman_clear(state: JobAlertState) -> None:
    if state.failing_since is None:
        state.delete()
    else:
        state.deadman_check_at = state.deadman_alerted_at = state.deadman_since = None
        state.save(update_fields=["deadman_alerted_at", "deadman_since", "deadman_check_at"])


def _latest_success(job_id: int) -> dict | None:
    return (
        JobExecution.objects.filter(job_id=job_id, status=ExecutionStatus.SUCCESS)
        .order_by("-created_at", "-pk")
        .values("pk", "scheduled_time", "finished_at", "trigger")
        .first()
    )


def _recoveries(work: Pass) -> None:
    """Failure streaks that a successful run has ended: one "recovered" each."""
    success_after = JobExecution.objects.filter(
        job_id=OuterRef("job_id"),
        created_at__gte=OuterRef("failing_since"),
        finished_at__gt=OuterRef("last_failure_at"),
        status=ExecutionStatus.SUCCESS,
    )
    ended = list(
        JobAlertState.objects.select_for_update(of=("self",))
        .select_related("job")
        .filter(failing_since__isnull=False)
        .filter(Exists(success_after))[:DEADMAN_PAGE]
    )
    for state in ended:
        success = (
            JobExecution.objects.filter(
                job_id=state.job_id,
                created_at__gte=state.failing_since,
                finished_at__gt=state.last_failure_at,
                status=ExecutionStatus.SUCCESS,
            )
            .order_by("finished_at", "pk")
            .values("pk", "scheduled_time", "finished_at", "trigger")
            .first()
        )
        if work.subscriptions.watches(state.job_id, E.RECOVERED):
            work.add(_recovered_event(state.job, success, since=state.failing_since))
        if state.deadman_check_at is None:
            state.delete()
        else:
            state.failing_since = state.last_failure_at = None
            state.save(update_fields=["failing_since", "last_failure_at"])


def _recovered_event(job: ScheduledJob, success: dict, *, since: datetime | None) -> Event:
    at = success["finished_at"]
    trouble = f" after failing since {since:%Y-%m-%d %H:%M:%S} UTC" if since else ""
    return Event(
        # Keyed by the run: the end of a failure streak and of a dead-man alert are one recovery.
        key=f"recovered:{job.pk}:run:{success['pk']}",
        event=E.RECOVERED,
        job_id=job.pk,
        job_name=job.name,
        execution_id=success["pk"],
        at=at,
        subject=f"[scheduler] Job {job.name!r} recovered",
        text=f"Job {job.name!r} (id {job.pk}) recovered: run #{success['pk']} succeeded at "
        f"{at:%Y-%m-%d %H:%M:%S} UTC{trouble}.",
        execution={
            "id": success["pk"],
            "status": ExecutionStatus.SUCCESS,
            "scheduledTime": success["scheduled_time"].isoformat(),
            "finishedAt": at.isoformat(),
            "error": "",
        },
    )


def _deadman_event(job: ScheduledJob, *, since: datetime, expected: datetime, grace: timedelta, ever: bool) -> Event:
    counted_from = (
        f"since {since:%Y-%m-%d %H:%M:%S} UTC" if ever else f"since it was set up ({since:%Y-%m-%d %H:%M:%S} UTC)"
    )
    text = (
        f"Job {job.name!r} (id {job.pk}) has had no successful run {counted_from}: one was expected at "
        f"{expected:%Y-%m-%d %H:%M:%S} UTC ({Schedule.of(job).describe()}), and the grace of "
        f"{int(grace.total_seconds())} s has passed."
    )
    return Event(
        key=f"deadman:{job.pk}:{since.isoformat()}",
        event=E.DEADMAN,
        job_id=job.pk,
        job_name=job.name,
        execution_id=None,
        at=expected + grace,
        subject=f"[scheduler] Job {job.name!r}: no successful run since {since:%Y-%m-%d %H:%M} UTC",
        text=text,
    )


def _link(path: str) -> str:
    return f"{settings.SCHEDULER_BASE_URL}{path}" if settings.SCHEDULER_BASE_URL else ""

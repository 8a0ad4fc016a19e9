"""Sending notifications from the outbox: claim due deliveries (the backend's SKIP LOCKED claim, so
each is sent by one process), send each by email or webhook, record the outcome, retry with backoff.

A delivery's claim is a lease: a process that stops between sending and recording leaves it to be
claimed again when the lease runs out, so a crash at exactly that moment can send it twice; nothing
else can. Claims commit durably even where the engine's other writes do not.
"""

import json
import logging
import urllib.error
import urllib.request
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction

from scheduler import clock
from scheduler.backends import backend
from scheduler.enums import DeliveryStatus, NotificationKind
from scheduler.models import NotificationDelivery

logger = logging.getLogger("scheduler.notifications")
CLAIM_BATCH = 10
MAX_BACKOFF = timedelta(hours=1)
USER_AGENT = "django-job-scheduler notifications"


class DeliveryFailed(Exception):
    """The channel did not take the notification (the message says why)."""


def deliveries_claim(
    *, instance_id: str, now: datetime | None = None, limit: int = CLAIM_BATCH
) -> list[NotificationDelivery]:
    """Claim up to `limit` due deliveries for this process, long enough to send them all."""
    now = now or clock.now()
    lease_until = now + timedelta(seconds=settings.SCHEDULER_NOTIFY_TIMEOUT * limit + 60)
    with transaction.atomic():
        db = backend()
        db.claim_durable()
        ids = db.deliveries_claim(instance_id=instance_id, now=now, lease_until=lease_until, limit=limit)
    return list(NotificationDelivery.objects.select_related("channel").filter(pk__in=ids).order_by("pk"))


def delivery_send(delivery: NotificationDelivery) -> None:
    """Hand one notification to its channel; raises DeliveryFailed saying why it did not go."""
    channel = delivery.channel
    if not channel.is_active:
        raise DeliveryFailed(f"channel {channel.name!r} is switched off")
    if channel.kind == NotificationKind.EMAIL:
        _send_email(delivery)
    elif channel.kind == NotificationKind.WEBHOOK:
        _send_webhook(delivery)
    else:
        raise DeliveryFailed(f"unknown channel kind {channel.kind!r}")


def delivery_record(delivery: NotificationDelivery, *, instance_id: str, error: str = "") -> str:
    """Record an attempt's outcome: sent, retried later (doubling the wait), or given up. Only the
    process holding the claim may; returns the delivery's new status (or its unchanged one)."""
    now = clock.now()
    if not error:
        fields = {"status": DeliveryStatus.SENT, "sent_at": now, "lease_expires_at": None}
    elif delivery.attempts >= settings.SCHEDULER_NOTIFY_MAX_ATTEMPTS:
        fields = {"status": DeliveryStatus.FAILED, "last_error": error[:2000], "lease_expires_at": None}
    else:
        fields = {
            "status": DeliveryStatus.PENDING,
            "last_error": error[:2000],
            "next_attempt_at": now + retry_delay(delivery.attempts),
            "lease_expires_at": None,
        }
    with transaction.atomic():
        backend().claim_durable()
        moved = NotificationDelivery.objects.filter(
            pk=delivery.pk, status=DeliveryStatus.SENDING, claimed_by=instance_id
        ).update(**fields)
    if not moved:
        return delivery.status
    log = logger.info if not error else logger.warning
    log(
        "Notification %s (%s) to channel %s: %s%s",
        delivery.pk,
        delivery.event,
        delivery.channel.name,
        fields["status"],
        f" after attempt {delivery.attempts}: {error}" if error else "",
        extra={"job_id": delivery.job_id or "-", "execution_id": delivery.execution_id or "-"},
    )
    return fields["status"]


def retry_delay(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: the backoff, doubled each time, at most an hour."""
    seconds = settings.SCHEDULER_NOTIFY_RETRY_BACKOFF * 2 ** max(0, attempts - 1)
    return min(timedelta(seconds=seconds), MAX_BACKOFF)


def deliveries_send(*, instance_id: str, now: datetime | None = None) -> int:
    """Claim, send and record what is due; returns how many were sent. (The engine's notifier
    does the same in steps, to watch the database calls apart from the network.)"""
    sent = 0
    for delivery in deliveries_claim(instance_id=instance_id, now=now):
        sent += delivery_attempt(delivery, instance_id=instance_id) == DeliveryStatus.SENT
    return sent


def delivery_attempt(delivery: NotificationDelivery, *, instance_id: str) -> str:
    """Send one claimed delivery and record the outcome."""
    if delivery.attempts > settings.SCHEDULER_NOTIFY_MAX_ATTEMPTS:  # its senders kept stopping mid-send
        return delivery_record(
            delivery, instance_id=instance_id, error=delivery.last_error or "sender stopped mid-send"
        )
    try:
        delivery_send(delivery)
    except DeliveryFailed as exc:
        return delivery_record(delivery, instance_id=instance_id, error=str(exc))
    except Exception as exc:  # whatever the backend or the network raised: retried like the rest
        return delivery_record(delivery, instance_id=instance_id, error=f"{type(exc).__name__}: {exc}")
    return delivery_record(delivery, instance_id=instance_id)


def _send_email(delivery: NotificationDelivery) -> None:
    recipients = [a.strip() for a in delivery.channel.target.split(",") if a.strip()]
    connection = get_connection(timeout=settings.SCHEDULER_NOTIFY_TIMEOUT)
    message = EmailMessage(
        subject=delivery.subject,
        body=delivery.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
        connection=connection,
        headers={"X-Scheduler-Event": delivery.event, "X-Scheduler-Event-Key": delivery.event_key},
    )
    try:
        message.send(fail_silently=False)
    except OSError as exc:  # smtplib's errors are OSErrors; so are refused connections and timeouts
        raise DeliveryFailed(f"email to {', '.join(recipients)}: {type(exc).__name__}: {exc}") from None


def _send_webhook(delivery: NotificationDelivery) -> None:
    """POST the payload as JSON; its `text` is what Slack-compatible receivers show."""
    body = json.dumps(delivery.payload).encode()
    request = urllib.request.Request(
        delivery.channel.target,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Scheduler-Event": delivery.event,
            "X-Scheduler-Event-Key": delivery.event_key,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.SCHEDULER_NOTIFY_TIMEOUT) as response:
            response.read(1024)
    except urllib.error.HTTPError as exc:
        answer = exc.read(300).decode("utf-8", "replace").strip()
        raise DeliveryFailed(f"webhook answered HTTP {exc.code}" + (f": {answer}" if answer else "")) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DeliveryFailed(f"webhook unreachable: {getattr(exc, 'reason', exc)}") from None

"""Notifications: which events are found, once each, and how deliveries go to a real SMTP server and a
real webhook receiver, with retries."""

import itertools
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from scheduler.enums import DeliveryStatus, NotificationEvent, NotificationKind
from scheduler.models import (
    JobAlertState,
    NotificationChannel,
    NotificationDelivery,
    NotificationSubscription,
    ScheduledJob,
)
from scheduler.services.deliveries import deliveries_claim, deliveries_send, retry_delay
from scheduler.services.notifications import (
    channel_save,
    channel_validate,
    deliveries_retry,
    notification_test_send,
    notifications_detect,
    subscription_save,
)
from tests.factories import ExecutionFactory, IntervalJobFactory

pytestmark = pytest.mark.django_db
E = NotificationEvent
_distinct = itertools.count(1)


@pytest.fixture(autouse=True)
def only_test_jobs(db, settings):
    ScheduledJob.objects.update(is_enabled=False, next_run_time=None)
    settings.SCHEDULER_NOTIFY_WINDOW = 0  # one notification per run unless a test says otherwise
    settings.SCHEDULER_NOTIFY_RETRY_BACKOFF = 30


@pytest.fixture
def start():
    """A moment a little ahead of the rows the test creates (their created_at is the real now)."""
    return timezone.now() + timedelta(seconds=5)


def channel(name, kind=NotificationKind.WEBHOOK, target="http://127.0.0.1:9/hook"):
    return channel_save(NotificationChannel(name=name, kind=kind, target=target))


def subscribe(target, job=None, **events):
    flags = {"on_failed": False, "on_recovered": False, **{f"on_{name}": value for name, value in events.items()}}
    return subscription_save(NotificationSubscription(channel=target, job=job, **flags))


def ended(job, status, at, error="boom"):
    """A run of `job` that ended `status` at `at`."""
    return ExecutionFactory(
        job=job,
        status=status,
        scheduled_time=at - timedelta(seconds=1, microseconds=next(_distinct)),
        started_at=at - timedelta(seconds=1) if status in ("success", "failed") else None,
        finished_at=at,
        error_message="" if status == "success" else error,
    )


def deliveries(**filters):
    return list(NotificationDelivery.objects.filter(**filters).order_by("pk"))


# --- configuration ---------------------------------------------------------------------------


def test_channel_targets_are_checked():
    assert channel_validate("email", " ops@example.com ,  oncall@example.com") == "ops@example.com, oncall@example.com"
    for kind, target in (("email", "not an address"), ("email", ""), ("webhook", "ftp://x"), ("webhook", "hooks")):
        with pytest.raises(ValidationError) as error:
            channel_validate(kind, target)
        assert "target" in error.value.message_dict
    with pytest.raises(ValidationError):
        subscribe(channel("quiet"))  # no event chosen


# --- events -----------------------------------------------------------------------------------


def test_a_failed_run_is_one_delivery_per_subscribed_channel_however_often_it_is_read(start):
    job, other = IntervalJobFactory(name="nightly report"), IntervalJobFactory()
    hook, mail = channel("hook"), channel("mail", NotificationKind.EMAIL, "ops@example.com")
    subscribe(hook, failed=True)  # every job
    subscribe(mail, job=job, failed=True)
    subscribe(channel("unrelated"), job=other, failed=True)
    run = ended(job, "failed", start, error="RuntimeError: disk full")

    assert notifications_detect(now=start + timedelta(seconds=1)) == 2
    assert notifications_detect(now=start + timedelta(seconds=2)) == 0  # read again: nothing new
    hook_delivery, mail_delivery = deliveries()
    assert {hook_delivery.channel_id, mail_delivery.channel_id} == {hook.pk, mail.pk}
    assert hook_delivery.event == E.FAILED and hook_delivery.execution_id == run.pk
    assert hook_delivery.status == DeliveryStatus.PENDING
    assert "nightly report" in hook_delivery.subject
    assert f"run #{run.pk}" in hook_delivery.text and "RuntimeError: disk full" in hook_delivery.text
    payload = hook_delivery.payload
    assert payload["text"] == hook_delivery.text and payload["event"] == "failed"
    assert payload["job"] == {"id": job.pk, "name": "nightly report"}
    assert payload["execution"]["id"] == run.pk


def test_one_notification_per_job_event_and_window(settings, start):
    settings.SCHEDULER_NOTIFY_WINDOW = 3600
    job = IntervalJobFactory()
    subscribe(channel("hook"), failed=True)
    at = start.replace(minute=1, second=0) + timedelta(hours=1)
    for minute in range(3):
        ended(job, "failed", at + timedelta(minutes=minute))
    assert notifications_detect(now=at + timedelta(minutes=5)) == 1
    ended(job, "failed", at + timedelta(hours=1))
    assert notifications_detect(now=at + timedelta(hours=1, minutes=1)) == 1  # the next window


def test_missed_and_skipped_runs_notify_only_those_who_asked(start):
    job = IntervalJobFactory()
    hook, quiet = channel("hook"), channel("quiet")
    subscribe(hook, missed=True, skipped=True)
    subscribe(quiet, failed=True)
    ended(job, "missed", start, error="missed: 90.0s late")
    ended(job, "skipped", start + timedelta(seconds=1), error="skipped: max_instances (1) runs ...")
    ended(job, "success", start + timedelta(seconds=2))
    assert notifications_detect(now=start + timedelta(seconds=3)) == 2
    assert [(d.event, d.channel_id) for d in deliveries()] == [(E.MISSED, hook.pk), (E.SKIPPED, hook.pk)]
    assert "was missed" in deliveries()[0].text and "90.0s late" in deliveries()[0].text


def test_a_subscription_is_not_told_of_what_ended_before_it_existed(start):
    job = IntervalJobFactory()
    ended(job, "failed", start - timedelta(minutes=1))
    subscribe(channel("hook"), failed=True)
    assert notifications_detect(now=start) == 0


def test_the_first_success_after_failures_is_one_recovered(start):
    job = IntervalJobFactory()
    hook = channel("hook")
    subscribe(hook, failed=True, recovered=True)
    ended(job, "failed", start)
    ended(job, "failed", start + timedelta(seconds=10))
    assert notifications_detect(now=start + timedelta(seconds=11)) == 2
    assert JobAlertState.objects.get(job=job).failing_since is not None
    success = ended(job, "success", start + timedelta(seconds=20))
    ended(job, "success", start + timedelta(seconds=30))
    assert notifications_detect(now=start + timedelta(seconds=31)) == 1
    assert notifications_detect(now=start + timedelta(seconds=32)) == 0
    recovered = deliveries(event=E.RECOVERED)[0]
    assert recovered.execution_id == success.pk and "recovered" in recovered.text
    assert not JobAlertState.objects.filter(job=job).exists()  # in good health: nothing kept


def test_dead_man_alerts_once_when_no_run_succeeds_within_the_period_and_grace(start):
    job = IntervalJobFactory(interval_minutes=1)
    hook = channel("hook")
    subscribe(hook, deadman=True, recovered=True).__class__.objects.update(deadman_grace=30)
    base = start + timedelta(minutes=1)  # after the job's creation, so its success counts from here
    ended(job, "success", base)
    ended(job, "failed", base + timedelta(seconds=65))  # trouble: the job is now watched

    def alerts():
        return deliveries(event=E.DEADMAN)

    assert notifications_detect(now=base + timedelta(seconds=70)) == 0  # expected by +60 s, grace to +90 s
    assert notifications_detect(now=base + timedelta(seconds=100)) == 1
    [alert] = alerts()
    assert "no successful run since" in alert.text and "grace of 30 s" in alert.text
    assert notifications_detect(now=base + timedelta(seconds=300)) == 0  # once per outage
    success = ended(job, "success", base + timedelta(seconds=310))
    assert notifications_detect(now=base + timedelta(seconds=320)) == 1
    assert deliveries(event=E.RECOVERED)[0].execution_id == success.pk
    assert len(alerts()) == 1


def test_dead_man_catches_a_job_nothing_runs(start):
    job = IntervalJobFactory(interval_minutes=1)
    subscribe(channel("hook"), job=job, deadman=True).__class__.objects.update(deadman_grace=60)
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=start - timedelta(minutes=10))
    later = start + timedelta(minutes=5)
    assert notifications_detect(now=later) == 1
    [alert] = deliveries(event=E.DEADMAN)
    assert "since it was set up" in alert.text
    ScheduledJob.objects.filter(pk=job.pk).update(is_paused=True)  # a paused job is not expected to run
    assert notifications_detect(now=later + timedelta(minutes=5)) == 0
    assert not JobAlertState.objects.filter(job=job).exists()


def test_without_subscriptions_a_pass_reads_nothing(start, django_assert_max_num_queries):
    ended(IntervalJobFactory(), "failed", start)
    with django_assert_max_num_queries(1):  # the subscriptions: no runs read, nothing written
        assert notifications_detect(now=start) == 0


# --- deliveries -------------------------------------------------------------------------------


def test_deliveries_reach_a_real_smtp_server_and_webhook(smtp_server, webhook_receiver, start):
    job = IntervalJobFactory(name="backup")
    subscribe(channel("mail", NotificationKind.EMAIL, "ops@example.com, oncall@example.com"), failed=True)
    subscribe(channel("hook", target=webhook_receiver.url), failed=True)
    ended(job, "failed", start, error="OSError: no space left")
    notifications_detect(now=start)

    assert deliveries_send(instance_id="sender-1", now=start) == 2
    assert {d.status for d in deliveries()} == {DeliveryStatus.SENT}
    [message] = smtp_server.received()
    assert "backup" in message["Subject"] and message["To"] == "ops@example.com, oncall@example.com"
    assert "no space left" in message.get_payload()
    [post] = webhook_receiver.received()
    assert "no space left" in post["body"]["text"] and post["body"]["event"] == "failed"
    assert post["event_key"] == deliveries(channel__kind="webhook")[0].event_key
    assert deliveries_send(instance_id="sender-1", now=start + timedelta(hours=1)) == 0  # sent once


def test_a_failed_delivery_is_retried_with_backoff_then_given_up(webhook_receiver, settings):
    settings.SCHEDULER_NOTIFY_MAX_ATTEMPTS = 3
    webhook_receiver.fail = 1
    hook = channel("hook", target=webhook_receiver.url)
    delivery = notification_test_send(hook)
    now = timezone.now()
    assert deliveries_send(instance_id="s", now=now) == 0
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    assert delivery.last_error == "webhook answered HTTP 500: receiver is down"
    assert delivery.next_attempt_at >= now + timedelta(seconds=29)
    assert deliveries_send(instance_id="s", now=now + timedelta(seconds=10)) == 0  # not due yet
    assert deliveries_send(instance_id="s", now=delivery.next_attempt_at) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 2)
    assert len(webhook_receiver.received()) == 1
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 20)] == [30, 60, 120, 3600]

    dead = notification_test_send(channel("dead", target="http://127.0.0.1:9/nothing-listens"))
    moment = timezone.now()
    for _ in range(3):
        deliveries_send(instance_id="s", now=moment)
        moment += timedelta(hours=2)
    dead.refresh_from_db()
    assert (dead.status, dead.attempts) == (DeliveryStatus.FAILED, 3)
    assert dead.last_error.startswith("webhook unreachable")
    assert deliveries_retry([dead.pk]) == 1
    dead.refresh_from_db()
    assert (dead.status, dead.attempts) == (DeliveryStatus.PENDING, 0)


def test_a_claim_is_held_until_its_lease_runs_out(webhook_receiver):
    delivery = notification_test_send(channel("hook", target=webhook_receiver.url))
    now = timezone.now()
    [claimed] = deliveries_claim(instance_id="stopped-sender", now=now)
    assert claimed.pk == delivery.pk and claimed.status == DeliveryStatus.SENDING
    assert deliveries_claim(instance_id="other", now=now + timedelta(seconds=30)) == []
    # The first sender stopped before recording: once its lease ends, another one sends it.
    assert deliveries_send(instance_id="other", now=claimed.lease_expires_at + timedelta(seconds=1)) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.claimed_by, delivery.attempts) == (DeliveryStatus.SENT, "other", 2)

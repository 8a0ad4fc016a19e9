"""The admin's notification pages: channels (checked targets, a test notification), subscriptions and
the deliveries with their state."""

import pytest

from scheduler.enums import DeliveryStatus, NotificationEvent
from scheduler.models import NotificationChannel, NotificationDelivery, NotificationSubscription
from scheduler.services.notifications import channel_save, notification_test_send
from tests.factories import IntervalJobFactory

pytestmark = pytest.mark.django_db
ADMIN = "/admin/scheduler"


def test_a_channel_is_checked_and_can_send_a_test(admin_client):
    bad = admin_client.post(f"{ADMIN}/notificationchannel/add/", {"name": "x", "kind": "email", "target": "nobody"})
    assert bad.status_code == 200 and "is not an email address" in bad.content.decode()
    response = admin_client.post(
        f"{ADMIN}/notificationchannel/add/",
        {"name": "ops", "kind": "email", "target": "a@example.com ,b@example.com", "is_active": "on"},
    )
    assert response.status_code == 302
    channel = NotificationChannel.objects.get(name="ops")
    assert channel.target == "a@example.com, b@example.com"
    admin_client.post(
        f"{ADMIN}/notificationchannel/", {"action": "send_test", "_selected_action": [channel.pk]}, follow=True
    )
    [delivery] = NotificationDelivery.objects.all()
    assert (delivery.event, delivery.status, delivery.channel_id) == (NotificationEvent.TEST, "pending", channel.pk)


def test_a_subscription_needs_an_event_and_may_be_for_one_job(admin_client):
    channel = channel_save(NotificationChannel(name="hook", kind="webhook", target="https://example.com/h"))
    job = IntervalJobFactory()
    base = {"channel": channel.pk, "job": job.pk, "deadman_grace": 300, "is_active": "on"}
    refused = admin_client.post(f"{ADMIN}/notificationsubscription/add/", base)
    assert "Choose at least one event" in refused.content.decode()
    admin_client.post(f"{ADMIN}/notificationsubscription/add/", {**base, "on_deadman": "on"})
    subscription = NotificationSubscription.objects.get()
    assert (subscription.job_id, subscription.on_deadman, subscription.on_failed) == (job.pk, True, False)
    assert "every job" not in admin_client.get(f"{ADMIN}/notificationsubscription/").content.decode()


def test_deliveries_show_their_state_and_failed_ones_can_be_retried(admin_client):
    channel = channel_save(NotificationChannel(name="hook", kind="webhook", target="https://example.com/h"))
    delivery = notification_test_send(channel)
    NotificationDelivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.FAILED, attempts=6, last_error="webhook answered HTTP 404: no such hook"
    )
    page = admin_client.get(f"{ADMIN}/notificationdelivery/").content.decode()
    assert "webhook answered HTTP 404" in page and "failed" in page
    assert "Payload" in admin_client.get(f"{ADMIN}/notificationdelivery/{delivery.pk}/change/").content.decode()
    admin_client.post(f"{ADMIN}/notificationdelivery/", {"action": "retry_now", "_selected_action": [delivery.pk]})
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 0)

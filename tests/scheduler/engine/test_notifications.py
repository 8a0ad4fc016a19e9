"""Notifications from two real `runscheduler` processes to a real SMTP server and a real webhook
receiver: every event sent once per channel, a failed delivery retried, failures, skips, a dead-man
alert and the recovery."""

from collections import Counter

import pytest
from django.db.models import Max

from scheduler.enums import DeliveryStatus, ExecutionStatus, NotificationEvent, NotificationKind
from scheduler.models import (
    JobExecution,
    NotificationChannel,
    NotificationDelivery,
    NotificationSubscription,
    NotifierCursor,
    ScheduledJob,
    SchedulerInstance,
    TaskFunction,
)
from scheduler.services.jobs import job_pause, job_update
from scheduler.services.notifications import CURSOR, channel_save, subscription_save
from tests.factories import IntervalJobFactory
from tests.scheduler.engine.conftest import wait_until

pytestmark = pytest.mark.postgres
E = NotificationEvent


def test_two_processes_send_each_event_once_per_channel(postgres, start_scheduler, smtp_server, webhook_receiver):
    webhook_receiver.fail = 1  # the first post is refused: that delivery is retried
    mail = channel_save(NotificationChannel(name="ops mail", kind=NotificationKind.EMAIL, target="ops@example.com"))
    hook = channel_save(NotificationChannel(name="chat", kind=NotificationKind.WEBHOOK, target=webhook_receiver.url))
    for channel in (mail, hook):
        subscription_save(
            NotificationSubscription(
                channel=channel, on_failed=True, on_recovered=True, on_skipped=True, on_deadman=True, deadman_grace=2
            )
        )
    fail = TaskFunction.objects.get(name="tasks.functions.fail")
    sleep = TaskFunction.objects.get(name="tasks.functions.sleep")
    flaky = IntervalJobFactory(name="flaky", interval_seconds=1, interval_minutes=None, task_function=fail)
    slow = IntervalJobFactory(
        name="slow", interval_seconds=1, interval_minutes=None, task_function=sleep, kwargs={"seconds": 2.5}
    )
    env = {
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_server.port}",
        "SCHEDULER_NOTIFY_INTERVAL": "0.3",
        "SCHEDULER_NOTIFY_WINDOW": "0",
        "SCHEDULER_NOTIFY_RETRY_BACKOFF": "0.5",
    }
    start_scheduler(env=env)
    start_scheduler(env=env)

    def sent(**filters):
        return NotificationDelivery.objects.filter(status=DeliveryStatus.SENT, **filters)

    wait_until(lambda: sent(event=E.DEADMAN, channel=hook).exists(), 40, "the dead-man alert of the failing job")
    wait_until(lambda: sent(event=E.SKIPPED, job=slow).count() >= 2, 40, "skipped runs notified")
    assert sent(event=E.FAILED, job=flaky).count() >= 2
    job_update(flaky, task_function=TaskFunction.objects.get(name="tasks.functions.noop"))
    wait_until(lambda: sent(event=E.RECOVERED, job=flaky).count() == 2, 40, "the recovery, on both channels")
    for job in (flaky, slow):
        job_pause(job)
    wait_until(lambda: not JobExecution.objects.unfinished().exists(), 20, "the last runs to end")
    last_end = JobExecution.objects.aggregate(last=Max("finished_at"))["last"]
    # A pass that read past the last run's end has found every event; then all must go out.
    wait_until(lambda: NotifierCursor.objects.get(name=CURSOR).scanned_to > last_end, 20, "a pass after the last run")
    wait_until(lambda: not NotificationDelivery.objects.exclude(status=DeliveryStatus.SENT).exists(), 40, "all sent")

    expected_keys = set(NotificationDelivery.objects.filter(channel=hook).values_list("event_key", flat=True))
    posted = Counter(post["event_key"] for post in webhook_receiver.received())
    mailed = Counter(message["X-Scheduler-Event-Key"] for message in smtp_server.received())
    assert set(posted) == expected_keys and max(posted.values()) == 1, "every event posted exactly once"
    assert set(mailed) == expected_keys and max(mailed.values()) == 1, "every event mailed exactly once"
    # Every failed and skipped run was notified (SCHEDULER_NOTIFY_WINDOW=0: one event per run).
    troubled = set(
        JobExecution.objects.filter(status__in=[ExecutionStatus.FAILED, ExecutionStatus.SKIPPED]).values_list(
            "pk", flat=True
        )
    )
    notified = set(
        NotificationDelivery.objects.filter(channel=hook, execution_id__isnull=False).values_list(
            "execution_id", flat=True
        )
    )
    assert troubled <= notified
    # The failing job never succeeded: one alert for the outage. (The slow job may have had one
    # too: a run every second that takes 2.5 s has no success within one period plus 2 s of grace.)
    assert NotificationDelivery.objects.filter(channel=hook, event=E.DEADMAN, job=flaky).count() == 1
    retried = NotificationDelivery.objects.get(channel=hook, attempts=2)
    assert retried.last_error == "webhook answered HTTP 500: receiver is down"
    instances = set(SchedulerInstance.objects.values_list("instance_id", flat=True))
    assert set(NotificationDelivery.objects.values_list("claimed_by", flat=True)) <= instances
    [dead_man] = [
        p["body"]
        for p in webhook_receiver.received()
        if p["body"]["event"] == "deadman" and p["body"]["job"]["id"] == flaky.pk
    ]
    assert "'flaky'" in dead_man["text"] and "has had no successful run since it was set up" in dead_man["text"]
    assert not ScheduledJob.objects.filter(pk=flaky.pk, is_paused=False).exists()

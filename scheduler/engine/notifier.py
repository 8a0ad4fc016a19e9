"""The notifier: a thread of each scheduler process that finds notification events in what the runs
recorded and sends the outbox (services.notifications, services.deliveries), apart from the threads
that claim and run jobs, so a slow mail server or webhook never delays a run."""

import contextlib
import logging
import threading

from django.db import connection

from scheduler.services.deliveries import deliveries_claim, delivery_attempt
from scheduler.services.notifications import notifications_detect

logger = logging.getLogger("scheduler.notifications")


class Notifier(threading.Thread):
    THREAD_NAME = "scheduler-notifier"

    def __init__(self, *, instance_id: str, interval: float, stop_event: threading.Event, guard=None):
        super().__init__(name=self.THREAD_NAME, daemon=True)
        self.instance_id = instance_id
        self.interval = interval
        self.stop_event = stop_event
        self.guard = guard or (lambda what: contextlib.nullcontext())  # the engine watchdog's
        self.log_extra = {"instance_id": instance_id}

    def run(self):
        while not self.stop_event.wait(self.interval):
            try:
                self.once()
            except Exception as exc:  # the database went away, say: the next pass tries again
                logger.warning("Notifications pass failed (%s); retrying", exc, extra=self.log_extra)
                connection.close()
        connection.close()

    def once(self) -> None:
        """Find new events, then send what is due until nothing is left (or the process stops)."""
        with self.guard("finding notification events"):
            notifications_detect()
        while not self.stop_event.is_set():
            with self.guard("claiming notifications"):
                claimed = deliveries_claim(instance_id=self.instance_id)
            if not claimed:
                return
            for delivery in claimed:
                # The network wait is bounded by SCHEDULER_NOTIFY_TIMEOUT; only the recording is a
                # database call for the watchdog. A delivery claimed but not sent before a stop
                # goes back to the outbox when its claim runs out.
                if self.stop_event.is_set():
                    return
                delivery_attempt(delivery, instance_id=self.instance_id)

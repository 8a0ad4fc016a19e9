"""Delivers cancel requests to the runs this process holds: unstarted ones never start, running
inline ones see `current_run().cancel_requested`."""

import logging
import threading

from django.db import connection

from scheduler.registry import run_cancel
from scheduler.services.cancels import cancels_requested

logger = logging.getLogger("scheduler.engine")


class CancelWatcher(threading.Thread):
    """Every `interval` (and at once on a change notification), asks the database which of this
    process's runs were asked to stop. Runs that end within `interval` of their claim are never
    asked about: a cancel cannot reach them in time anyway, and the hot path stays free of it."""

    THREAD_NAME = "scheduler-cancels"

    def __init__(self, runner, stop_event: threading.Event, *, guard, interval: float = 0.5):
        super().__init__(name=self.THREAD_NAME, daemon=True)
        self.runner = runner
        self.stop_event = stop_event
        self.guard = guard
        self.interval = interval
        self._wake = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def run(self):
        while not self.stop_event.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            held = self.runner.held_for(min(self.interval, 0.2))
            if not held:
                continue
            try:
                with self.guard("cancel requests"):
                    requested = cancels_requested(held)
            except Exception as exc:
                logger.warning("Could not read cancel requests (%s); retrying", exc)
                connection.close()
                continue
            for execution_id, reason in requested.items():
                if not self.runner.cancel_unstarted(execution_id, reason):
                    run_cancel(execution_id, reason)
        connection.close()

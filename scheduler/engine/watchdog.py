"""Notices an engine database call stuck on a dead connection and cuts that connection.

A server that vanished behind a load balancer, or a network that drops traffic without a reset,
can leave a call waiting for an answer that never comes (TCP keepalives do not help when a proxy
in between keeps answering them). Each engine call runs inside guard(); a call still waiting
after SCHEDULER_DB_OPERATION_TIMEOUT has its socket shut down, so it fails at once with a
connection error, and the engine's usual reconnect path takes over.
"""

import contextlib
import logging
import threading
import time

from django.db import connections

from scheduler.backends import backend

logger = logging.getLogger("scheduler.engine")


class Watchdog(threading.Thread):
    def __init__(self, timeout: float, stop_event: threading.Event, *, check_every: float = 1.0):
        super().__init__(name="scheduler-watchdog", daemon=True)
        self.timeout = timeout
        self.stop_event = stop_event
        self.check_every = check_every
        self._lock = threading.Lock()
        self._calls: dict[object, tuple[str, float, object, str]] = {}

    @contextlib.contextmanager
    def guard(self, what: str):
        """Watch the database call(s) made by this thread inside the block."""
        token = object()
        call = (what, time.monotonic() + self.timeout, connections["default"], threading.current_thread().name)
        with self._lock:
            self._calls[token] = call
        try:
            yield
        finally:
            with self._lock:
                self._calls.pop(token, None)

    def run(self):
        while not self.stop_event.wait(self.check_every):
            now = time.monotonic()
            with self._lock:
                # Cut under the lock, while each call is still registered: one that has just
                # returned must not have its connection's next, unrelated query cut instead.
                for token, (what, deadline, wrapper, thread) in list(self._calls.items()):
                    if deadline > now:
                        continue
                    del self._calls[token]  # cut once; the call fails and goes its own way
                    logger.warning(
                        "Database call stuck for %.0f s (%s, thread %s): closing its connection to reconnect",
                        self.timeout,
                        what,
                        thread,
                    )
                    backend().connection_sever(wrapper)

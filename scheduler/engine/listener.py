"""PostgreSQL LISTEN/NOTIFY listener: wakes the engine as soon as a change is committed."""
import logging
import threading

import psycopg
from django.db import connection

from scheduler.services.notify import NOTIFY_CHANNEL

logger = logging.getLogger("scheduler.engine")


def _conninfo() -> str:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    params.pop("server_side_binding", None)
    params = {k: v for k, v in params.items() if v not in (None, "")}
    return psycopg.conninfo.make_conninfo(**params)


class ChangeListener(threading.Thread):
    """Calls `wakeup` on every notification; reconnects with back-off when the server goes away."""

    def __init__(self, wakeup, stop_event: threading.Event):
        super().__init__(name="scheduler-listener", daemon=True)
        self.wakeup = wakeup
        self.stop_event = stop_event
        self.conninfo = _conninfo()

    def run(self):
        backoff = 0.5
        while not self.stop_event.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    backoff = 0.5
                    # Anything committed while we were not listening is caught by this wake-up.
                    self.wakeup()
                    while not self.stop_event.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            self.wakeup()
            except psycopg.Error as exc:
                if self.stop_event.is_set():
                    return
                logger.warning("Change listener lost its connection (%s); reconnecting in %.1fs", exc, backoff)
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, 10)

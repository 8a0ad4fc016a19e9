"""The database's clock as this process reads it.

Times that other processes compare (is a run due, has a lease expired, is a process alive) are
taken from here, so one host with a wrong clock can neither fire runs early nor take over another
process's lease. The scheduler engine reads the database's clock at start and with every heartbeat
(services.instances.clock_offset_measure) and counts on from that reading with the monotonic
clock, so a step of the host's wall clock between readings (NTP, a resumed VM) changes nothing. A
process that never reads it (a web process, a test) uses its host clock.
"""

import time
from datetime import datetime, timedelta

from django.utils import timezone

_reading: tuple[datetime, float] | None = None  # (the database's time, time.monotonic() then)


def now() -> datetime:
    if _reading is None:
        return timezone.now()
    database_time, at = _reading
    return database_time + timedelta(seconds=time.monotonic() - at)


def offset() -> timedelta:
    """The database's clock minus this host's, now."""
    return now() - timezone.now()


def synchronise(database_time: datetime, monotonic_at: float) -> None:
    """Count on from a reading of the database's clock taken at time.monotonic() == monotonic_at."""
    global _reading
    _reading = (database_time, monotonic_at)

"""The database's clock as this process reads it: host time plus the offset last measured.

Times that other processes compare (is a run due, has a lease expired, is a process alive) are
taken from here, so one host with a wrong clock can neither fire runs early nor take over another
process's lease. The scheduler engine measures the offset at start and with every heartbeat
(services.instances.clock_offset_measure); a process that never measures it (a web process, a
test) uses its host clock.
"""

from datetime import datetime, timedelta

from django.utils import timezone

_offset = timedelta(0)  # the database's clock minus this host's


def now() -> datetime:
    return timezone.now() + _offset


def offset() -> timedelta:
    return _offset


def offset_set(value: timedelta) -> None:
    global _offset
    _offset = value

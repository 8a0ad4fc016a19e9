"""The database backend: every database-specific statement and setting, behind one interface.

`backend()` picks the implementation for the default database once per process, as Oban picks
its engine: PostgreSQL (several scheduler processes, set-based statements, LISTEN/NOTIFY) or
SQLite (one scheduler process, plain ORM statements, polling).
"""

import functools

from django.db import connections

from scheduler.backends.base import Backend, NewRun, SchedulerAlreadyRunning
from scheduler.backends.postgresql import PostgreSQLBackend
from scheduler.backends.sqlite import SQLiteBackend

BACKENDS = {"postgresql": PostgreSQLBackend, "sqlite": SQLiteBackend}


@functools.cache
def backend() -> Backend:
    vendor = connections["default"].vendor
    if vendor not in BACKENDS:
        raise RuntimeError(f"The scheduler supports PostgreSQL and SQLite, not {vendor!r}.")
    return BACKENDS[vendor]()


def backend_for(using: str) -> Backend:
    """The backend of another database alias (a migrate or a sync on a database other than the
    default one)."""
    vendor = connections[using].vendor
    if vendor == connections["default"].vendor:
        return backend()
    if vendor not in BACKENDS:
        raise RuntimeError(f"The scheduler supports PostgreSQL and SQLite, not {vendor!r}.")
    return BACKENDS[vendor]()


__all__ = ["Backend", "NewRun", "SchedulerAlreadyRunning", "backend", "backend_for"]

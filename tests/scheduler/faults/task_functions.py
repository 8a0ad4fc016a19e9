"""Task functions of the fault tests (SCHEDULER_TASK_MODULES adds this module in their schedulers).

They report what the engine's own records cannot vouch for when the fault is the engine's clock
or its bookkeeping: the database's clock when a run really started, and, in a file of the test's,
every start and end of a run in the order they happened.

The test process never imports this module (it would add these functions to its own registry, which
other tests count); conftest.py reads the marks file.
"""

import os
import time
import uuid

from django.db import connection

from scheduler.models import JobExecution
from scheduler.registry import task_function


def _database_clock() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0].isoformat()


def _append(path: str, line: str) -> None:
    # One write() of a short line to an O_APPEND file: lines from several processes never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@task_function(description="Returns the database's clock as the run starts (fault tests).")
def db_clock(**kwargs):
    return {"db_started": _database_clock(), "pid": os.getpid()}


@task_function(description="Notes its start and end in the file `path` and sleeps in between (fault tests).")
def marked_sleep(path: str, seconds: float = 0, label: str = "", release: str = "", **kwargs):
    """Sleeps `seconds`, or, given `release`, until that file exists (at most `seconds`): a test then
    ends the run when it is ready, however slowly the machine got there."""
    token = uuid.uuid4().hex[:12]
    _append(path, f"start {token} pid={os.getpid()} label={label} db={_database_clock()}")
    deadline = time.monotonic() + float(seconds)
    if release:
        while time.monotonic() < deadline and not os.path.exists(release):
            time.sleep(0.05)
    else:
        time.sleep(float(seconds))
    _append(path, f"end {token} pid={os.getpid()} label={label} db={_database_clock()}")
    return {"token": token, "pid": os.getpid()}


@task_function(description="Reads through the ORM on a Celery worker (fault tests).", offload=True)
def orm_read_offloaded(**kwargs):
    return {"executions": JobExecution.objects.count(), "pid": os.getpid()}

"""Harness for the fault tests: real `runscheduler` processes on PostgreSQL, and the faults made
for real: a TCP proxy the test partitions (proxy.py), libfaketime for wrong host clocks,
pg_terminate_backend for a failover, SIGSTOP/SIGCONT for a frozen process.

The engine fixtures (`start_scheduler`, `engine_db`) and `wait_until` come from the engine tests.
"""

import functools
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta

import pytest
from django.db import connection

from scheduler.models import JobExecution, SchedulerInstance, TaskFunction
from tests.conftest import libfaketime_path, service_missing
from tests.scheduler.engine.conftest import database_url, engine_db, start_scheduler, wait_until  # noqa: F401
from tests.scheduler.faults.proxy import PgProxy

# The subprocesses load the fault tests' own task functions beside the shipped ones.
TASK_MODULES = "tasks.functions,tests.scheduler.faults.task_functions"
FAULT_FUNCTIONS = "tests.scheduler.faults.task_functions"


# --- the database's clock and what the schedulers wrote -------------------------------------------


def db_now() -> datetime:
    """The database's clock (the reference every scheduling decision must use)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]


def task_function(name: str) -> TaskFunction:
    """A task function synced by a scheduler started with TASK_MODULES (`sleep`, `db_clock`, ...)."""
    full = name if "." in name else f"{FAULT_FUNCTIONS}.{name}"
    return wait_until(lambda: TaskFunction.objects.filter(name=full, is_active=True).first(), 10, f"{full} synced")


def instance_of(proc) -> SchedulerInstance:
    """The SchedulerInstance row of a scheduler subprocess."""
    return wait_until(
        lambda: SchedulerInstance.objects.filter(pid=proc.pid).order_by("-started_at").first(),
        10,
        f"instance row of pid {proc.pid}",
    )


def executions_of(proc):
    return JobExecution.objects.filter(instance_id__startswith=f"{os.uname().nodename}-{proc.pid}-")


def log_since(proc, offset: int) -> str:
    """What the process logged after `offset` characters (len(proc.log()) at some moment)."""
    return proc.log()[offset:]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used, from /proc (clock ticks)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def frozen(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "T"


class Freezer:
    """SIGSTOP / SIGCONT, making sure a test never leaves a process stopped (it could not exit)."""

    def __init__(self):
        self._stopped: set[int] = set()

    def freeze(self, proc) -> None:
        os.kill(proc.pid, signal.SIGSTOP)
        self._stopped.add(proc.pid)
        wait_until(lambda: frozen(proc.pid), 5, f"pid {proc.pid} stopped")

    def thaw(self, proc) -> None:
        os.kill(proc.pid, signal.SIGCONT)
        self._stopped.discard(proc.pid)

    def thaw_all(self) -> None:
        for pid in list(self._stopped):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self._stopped.clear()


@pytest.fixture
def freezer(start_scheduler):  # noqa: F811 (set up before, so torn down after, the schedulers' cleanup)
    frozen_procs = Freezer()
    yield frozen_procs
    frozen_procs.thaw_all()


# --- the partition proxy ------------------------------------------------------------------------------


@pytest.fixture
def pg_proxy(engine_db):  # noqa: F811
    """A PgProxy to this test's PostgreSQL server; `pg_proxy.url(database_url())` goes through it."""
    if connection.vendor != "postgresql":
        service_missing("PostgreSQL is not the test database", "set DATABASE_URL=postgres://...")
    params = connection.settings_dict
    proxy = PgProxy((params["HOST"] or "127.0.0.1", int(params["PORT"] or 5432)))
    yield proxy
    proxy.close()


def sessions_through(proxy) -> list[tuple]:
    """(pid, state, backend_xid, query) of the server sessions of the proxy's live connections."""
    ports = sorted(proxy.backend_client_ports())
    if not ports:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, state, backend_xid::text, left(query, 120) FROM pg_stat_activity "
            "WHERE datname = current_database() AND client_port = ANY(%s)",
            [ports],
        )
        return cursor.fetchall()


def rows_locked(job_ids) -> set[int]:
    """Which of these job rows another transaction holds a row lock on right now."""
    with connection.cursor() as cursor:
        # KEY SHARE conflicts with FOR UPDATE (a claim's lock) but not with a claim's UPDATE of
        # next_run_time, so this probe never gets in a claim's way.
        cursor.execute(
            "SELECT id FROM scheduler_scheduledjob WHERE id = ANY(%s) FOR KEY SHARE SKIP LOCKED",
            [list(job_ids)],
        )
        free = {row[0] for row in cursor.fetchall()}
    return set(job_ids) - free


# --- libfaketime ----------------------------------------------------------------------------------------


def pytest_runtest_setup(item):
    """One SKIPPED line for every test needing libfaketime, when it is missing (a failure in CI)."""
    if "faketime" in item.fixturenames and libfaketime_path() is None:
        service_missing("libfaketime is not installed", "apt-get install faketime (Debian) to run this test")


_CLOCK_PROBE = r"""
import json, sys, threading, time
import psycopg
host, monotonic = time.time(), time.monotonic()
threading.Event().wait(0.3)
waited = time.monotonic() - monotonic
with psycopg.connect(sys.argv[1], connect_timeout=5) as conn:
    db = conn.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()[0]
print(json.dumps({"host": host, "db": float(db), "waited": waited}))
"""


def faketime_env_for(offset_seconds: int) -> dict:
    """Environment that makes a subprocess's clock `offset_seconds` fast (negative: slow)."""
    return {
        "LD_PRELOAD": libfaketime_path(),
        "FAKETIME": f"{offset_seconds:+d}",  # a relative offset in seconds
        "FAKETIME_DONT_RESET": "1",
        # Only the wall clock is wrong, as on a real host: timed waits and intervals are unaffected.
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "NO_FAKE_STAT": "1",
    }


@functools.cache
def _faketime_check(offset_seconds: int, url: str) -> str | None:
    """Run a child under the fake clock: its clock must be off by the offset (from ours and from
    the database's), timed waits must last what they say, and psycopg must work. None if so."""
    env = {**os.environ, **faketime_env_for(offset_seconds)}
    before = time.time()
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CLOCK_PROBE, url], env=env, capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        return "a child process under libfaketime hung"
    after = time.time()
    if done.returncode != 0:
        return f"a child process under libfaketime failed: {done.stderr.strip()[-500:]}"
    probe = json.loads(done.stdout)
    shift_from_us = probe["host"] - (before + after) / 2
    shift_from_db = probe["host"] - probe["db"]
    problems = []
    slack = 2 + (after - before)
    if abs(shift_from_us - offset_seconds) > slack:
        problems.append(f"its clock is {shift_from_us:+.1f}s from the test's, not {offset_seconds:+d}s")
    if abs(shift_from_db - offset_seconds) > slack:
        problems.append(f"its clock is {shift_from_db:+.1f}s from the database's, not {offset_seconds:+d}s")
    if not 0.25 <= probe["waited"] <= 5:
        problems.append(f"a 0.3 s wait took {probe['waited']:.2f}s")
    return "; ".join(problems) or None


@pytest.fixture
def faketime(engine_db):  # noqa: F811
    """`faketime(seconds)`: env for start_scheduler that puts the process's clock that far ahead,
    checked first in a child process (clock shifted, waits intact, psycopg working)."""

    def env(offset_seconds: int) -> dict:
        if problem := _faketime_check(offset_seconds, database_url()):
            pytest.fail(f"libfaketime does not work here ({libfaketime_path()}): {problem}", pytrace=False)
        return faketime_env_for(offset_seconds)

    return env


# --- reading the outcome ----------------------------------------------------------------------------


def reap_leftovers(timeout: float) -> None:
    """After the schedulers stopped: wait for runs still unfinished to be failed by their lease
    (leases_reap as a live process's heartbeat would call it)."""
    from scheduler.services.leases import leases_reap

    def settled():
        leases_reap()
        return not JobExecution.objects.unfinished().exists()

    wait_until(settled, timeout, "no run left pending or running", interval=0.5)


def fire_times(job) -> list[datetime]:
    return list(
        JobExecution.objects.filter(job=job).order_by("scheduled_time").values_list("scheduled_time", flat=True)
    )


def grid_gaps(times: list[datetime], step: timedelta) -> list[tuple[datetime, datetime]]:
    """Consecutive fire times further apart than the job's interval (a fire time that never ran)."""
    return [(a, b) for a, b in zip(times, times[1:]) if b - a != step]


# --- the marks file of task_functions.marked_sleep ------------------------------------------------


def marks(path) -> list[dict]:
    """The lines marked_sleep wrote: [{"event": "start"|"end", "token", "pid", "label", "db"}]."""
    if not os.path.exists(path):
        return []
    events = []
    with open(path) as lines:
        for line in lines:
            event, token, *fields = line.split()
            events.append({"event": event, "token": token, **dict(field.split("=", 1) for field in fields)})
    return events


def most_at_once(events, label: str | None = None) -> int:
    """The most runs (of one label, or all) between their start and end at the same moment."""
    running, peak = 0, 0
    for event in events:
        if label is not None and event["label"] != label:
            continue
        running += 1 if event["event"] == "start" else -1
        peak = max(peak, running)
    return peak

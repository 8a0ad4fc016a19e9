"""The fault harness itself: the proxy forwards, a partition stops everything, heal() kills and
restores; a claim cut holds its rows locked; libfaketime shifts a child's clock. A fault test that
fails should fail on the fault, never on its tools."""

import threading
import time
from datetime import timedelta

import psycopg
import pytest
from django.utils import timezone

from scheduler.models import ScheduledJob
from tests.factories import IntervalJobFactory
from tests.scheduler.faults.conftest import database_url, rows_locked, sessions_through, wait_until

pytestmark = pytest.mark.postgres


def _connect(url, timeout=3):
    return psycopg.connect(url, connect_timeout=timeout, autocommit=True)


def _in_thread(function):
    """Run `function` in a thread; returns (thread, outcome dict with "value" or "error")."""
    outcome = {}

    def target():
        try:
            outcome["value"] = function()
        except Exception as exc:  # what the caller checks
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def test_proxy_forwards_then_partition_stops_everything_and_heal_restores(postgres, engine_db, pg_proxy):
    url = pg_proxy.url(database_url())
    conn = _connect(url)
    assert conn.execute("SELECT 1").fetchone() == (1,)
    (pid,) = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert [row[0] for row in sessions_through(pg_proxy)] == [pid], "the proxy's session is the one it made"

    pg_proxy.partition()
    stuck, outcome = _in_thread(lambda: conn.execute("SELECT 1").fetchone())
    stuck.join(1.5)
    assert stuck.is_alive(), f"a query went through the partition: {outcome}"
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError):
        _connect(url, timeout=2)  # accepted by the proxy, then never answered
    assert time.monotonic() - started >= 1.5, "a new connection was refused instead of left hanging"

    pg_proxy.heal()
    stuck.join(5)
    assert not stuck.is_alive(), "heal() did not kill the connection cut by the partition"
    assert isinstance(outcome.get("error"), psycopg.OperationalError), outcome
    wait_until(lambda: not sessions_through(pg_proxy), 5, "the server side of the killed connection gone")
    again = _connect(url)
    assert again.execute("SELECT 2").fetchone() == (2,)
    again.close()
    conn.close()


def test_partition_after_claim_leaves_the_claimed_rows_locked(postgres, engine_db, pg_proxy):
    job = IntervalJobFactory(interval_hours=1, interval_minutes=None)
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=timezone.now() - timedelta(seconds=1))
    claim = (
        'SELECT "scheduler_scheduledjob"."id" FROM "scheduler_scheduledjob" WHERE "scheduler_scheduledjob"."id" = %s '
        'FOR UPDATE OF "scheduler_scheduledjob" SKIP LOCKED'
    )
    conn = psycopg.connect(pg_proxy.url(database_url()), connect_timeout=3)  # not autocommit: a transaction
    cut = pg_proxy.partition_after_claim()

    assert conn.execute(claim, [-1]).fetchall() == [], "a claim that locked nothing goes through"
    assert not cut.is_set()
    stuck, outcome = _in_thread(lambda: conn.execute(claim, [job.pk]).fetchall())
    assert cut.wait(5), "the claim that locked a row was not cut"
    stuck.join(1)
    assert stuck.is_alive(), f"the claim's answer got through: {outcome}"
    assert pg_proxy.claim_cut.rows_locked == 1
    assert rows_locked([job.pk]) == {job.pk}, "the cut claim's transaction should still hold its row"
    sessions = wait_until(
        lambda: [s for s in sessions_through(pg_proxy) if s[1] == "idle in transaction"],
        5,
        "session idle in transaction",
    )
    assert sessions[0][2] is not None, "a session holding row locks has a transaction id"

    pg_proxy.heal()
    wait_until(lambda: not rows_locked([job.pk]), 5, "row released once the connection died")
    stuck.join(5)
    assert isinstance(outcome.get("error"), psycopg.OperationalError), outcome
    conn.close()


def test_faketime_shifts_a_child_clock_and_psycopg_still_works(postgres, engine_db, faketime):
    # The fixture runs a child under each offset and fails unless its clock is shifted by it (from
    # ours and from the database's), its timed waits last what they say and psycopg connects.
    for offset in (90, 7200):
        env = faketime(offset)
        assert env["FAKETIME"] == f"+{offset}"
        assert env["LD_PRELOAD"].endswith(".so.1")

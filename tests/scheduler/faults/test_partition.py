"""Fault 2: a network partition in the middle of a claim.

Scheduler A reaches PostgreSQL through a proxy the test controls, scheduler B directly. The proxy
cuts A off right after the server ran one of A's claims (`SELECT ... FOR UPDATE SKIP LOCKED`) that
locked due rows, before A hears the answer: A's open transaction holds those rows, and B skips them.
The server must end that session (idle_in_transaction_session_timeout) so B runs those jobs within
seconds; A must notice its stuck connection (watchdog), say so, and work again once the network is
back, by itself.
"""

import time
from collections import Counter
from datetime import timedelta

import pytest

from scheduler.enums import ExecutionStatus
from scheduler.models import JobExecution, SchedulerInstance
from scheduler.services.leases import LEASE_EXPIRED
from tests.factories import IntervalJobFactory
from tests.scheduler.faults.conftest import (
    database_url,
    db_now,
    executions_of,
    fire_times,
    grid_gaps,
    instance_of,
    log_since,
    reap_leftovers,
    rows_locked,
    sessions_through,
    wait_until,
)

pytestmark = pytest.mark.postgres

IDLE_IN_TRANSACTION_TIMEOUT = 3
OPERATION_TIMEOUT = 6
LOCK_TTL = 10
ENV = {
    "SCHEDULER_DB_IDLE_IN_TRANSACTION_TIMEOUT": str(IDLE_IN_TRANSACTION_TIMEOUT),
    "SCHEDULER_DB_OPERATION_TIMEOUT": str(OPERATION_TIMEOUT),
    "SCHEDULER_LOCK_TTL": str(LOCK_TTL),
    "SCHEDULER_HEARTBEAT_INTERVAL": "1",
    "DATABASE_CONNECT_TIMEOUT": "3",
}
# A run may start this late: the server ends the cut claim's session after the idle timeout, then
# B claims at its next wake-up; 4 s of slack for a loaded 2-core machine.
ALLOWED_LAG = timedelta(seconds=IDLE_IN_TRANSACTION_TIMEOUT + 4)
# A notices the stuck call at the operation timeout (the watchdog checks every second).
ALLOWED_DETECTION = OPERATION_TIMEOUT + 4
JOBS = 5
SECOND = timedelta(seconds=1)


def test_partition_mid_claim_frees_the_rows_and_the_cut_process_recovers(postgres, start_scheduler, pg_proxy):
    a = start_scheduler("--workers", "2", env={**ENV, "DATABASE_URL": pg_proxy.url(database_url())}, wait=False)
    b = start_scheduler("--workers", "2", env=ENV, wait=False)
    a.wait_started()
    b.wait_started()
    a_row = instance_of(a)
    # max_instances above 1: a run A claimed before the cut keeps its lease until A records it or the
    # lease expires (LOCK_TTL), and the job's next runs would be skipped meanwhile, by design; that
    # rule has its own tests (test_multiprocess), the claim's row locks are this test's subject.
    jobs = [
        IntervalJobFactory(interval_seconds=1, interval_minutes=None, coalesce=False, max_instances=5)
        for _ in range(JOBS)
    ]
    job_ids = [job.pk for job in jobs]
    wait_until(
        lambda: (
            executions_of(a).filter(status="success").exists() and executions_of(b).filter(status="success").exists()
        ),
        20,
        "both schedulers running jobs (A through the proxy)",
    )

    # --- the partition, right after a claim of A's locked due rows -------------------------------
    log_mark = len(a.log())
    cut = pg_proxy.partition_after_claim()
    assert cut.wait(20), "A made no claim that locked a due row within 20 s (does its traffic go through the proxy?)"
    cut_at = pg_proxy.claim_cut.at
    cut_db = db_now()
    first, second = rows_locked(job_ids), (time.sleep(0.3), rows_locked(job_ids))[1]
    a_locked = first & second  # B's own claims hold rows for milliseconds only
    assert a_locked, f"the cut claim locked {pg_proxy.claim_cut.rows_locked} rows, yet none is locked now"
    sessions = sessions_through(pg_proxy)

    wait_until(
        lambda: not rows_locked(a_locked),
        IDLE_IN_TRANSACTION_TIMEOUT + 4,
        f"the rows of jobs {sorted(a_locked)} locked by A's cut claim to be released (the server should end "
        f"a scheduler session idle in a transaction after {IDLE_IN_TRANSACTION_TIMEOUT} s; A's sessions: "
        f"{sessions})",
    )
    released_after = time.monotonic() - cut_at
    wait_until(
        lambda: all(executions_of(b).filter(job_id=pk, started_at__gt=cut_db).exists() for pk in a_locked),
        5,
        "B running the jobs A's cut claim had locked",
    )

    wait_until(
        lambda: "stuck" in log_since(a, log_mark),
        max(1.0, ALLOWED_DETECTION - (time.monotonic() - cut_at)),
        f"A logging that its database call is stuck, within {ALLOWED_DETECTION} s of the partition",
    )
    detected_after = time.monotonic() - cut_at
    assert a.popen.poll() is None, f"A exited while cut off:\n{a.log()[-3000:]}"

    # --- the network comes back: A must work again by itself ----------------------------------------
    pg_proxy.heal()
    healed_db = db_now()
    wait_until(
        lambda: SchedulerInstance.objects.get(pk=a_row.pk).last_heartbeat > healed_db,
        15,
        "A heartbeating again after heal()",
    )
    wait_until(
        lambda: executions_of(a).filter(scheduled_time__gt=healed_db, status="success").count() >= 3,
        15,
        "A claiming and running jobs again after heal()",
    )
    recovered_after = time.monotonic() - cut_at

    # Checked last, so that a failure here still reports the schedule above.
    stopped = {"A": a.terminate(), "B": b.terminate()}
    reap_leftovers(LOCK_TTL + 5)

    # --- what a user checks -------------------------------------------------------------------------
    late, statuses = [], Counter()
    for job in jobs:
        times = fire_times(job)
        assert len(times) == len(set(times)), f"job {job.pk} ran twice at one fire time"
        assert not grid_gaps(times, SECOND), f"job {job.pk} lost fire times: {grid_gaps(times, SECOND)[:3]}"
        for run in JobExecution.objects.filter(job=job):
            statuses[run.status] += 1
            if run.status == ExecutionStatus.FAILED:
                # Only runs A had claimed (and committed) before the cut and could not record since:
                # their lease expired. Never silently missing, never run twice.
                assert run.error_message.startswith(LEASE_EXPIRED) and a_row.instance_id in run.error_message, (
                    f"unexpected failure of job {job.pk} at {run.scheduled_time}: {run.error_message}"
                )
            else:
                assert run.status == ExecutionStatus.SUCCESS, (
                    job.pk,
                    run.scheduled_time,
                    run.status,
                    run.error_message,
                )
            if run.started_at is not None and run.started_at - run.scheduled_time > ALLOWED_LAG:
                late.append((job.pk, run.scheduled_time.isoformat(), (run.started_at - run.scheduled_time)))
    assert not late, f"runs started more than {ALLOWED_LAG.total_seconds():.0f}s late: {late[:5]}"
    print(
        f"cut claim locked jobs {sorted(a_locked)}; released after {released_after:.1f}s; A said stuck after "
        f"{detected_after:.1f}s; A ran again {recovered_after:.1f}s after the cut; runs {dict(statuses)}"
    )
    assert stopped == {"A": 0, "B": 0}, (
        f"SIGTERM must stop both cleanly (exit 0) after the partition healed; exit codes {stopped}; "
        f"A's log:\n{a.log()[-3000:]}"
    )

"""PostgreSQL: set-based claim and outcome statements, asynchronous commit, LISTEN/NOTIFY.

Batches travel as one JSON document expanded by jsonb_to_recordset: Python's C encoder builds
it far faster than psycopg quotes thousands of separate values or array elements, and one
statement replaces a round trip per row.
"""

import json
import logging
import os
import socket
import threading

import psycopg
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.backends.signals import connection_created

from scheduler import clock
from scheduler.backends.base import ALWAYS_SET, KEPT_UNLESS_GIVEN, Backend, run_key
from scheduler.enums import UNFINISHED_STATUSES, DeliveryStatus, ExecutionStatus, ExecutionTrigger

logger = logging.getLogger("scheduler.engine")
NOTIFY_CHANNEL = "scheduler_changes"
ENGINE_SESSIONS = "scheduler-engine-sessions"  # the connection_created receiver's dispatch_uid


def _isoformat(moment):
    # DjangoJSONEncoder would cut the microseconds; isoformat keeps them.
    return moment.isoformat() if moment is not None else None


class PostgreSQLBackend(Backend):
    vendor = "postgresql"
    change_notifications = "LISTEN/NOTIFY"

    def claim_durable(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO ON")

    def runs_insert(self, runs, *, trigger, instance_id, now, lease_expires_at):
        rows = [
            {
                "job_id": r.job_id,
                "status": r.status,
                "scheduled_time": r.scheduled_time.isoformat(),
                "error_message": r.error_message,
            }
            for r in runs
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                WITH batch AS (
                    SELECT * FROM jsonb_to_recordset(%(runs)s::jsonb)
                    AS batch(job_id bigint, status varchar, scheduled_time timestamptz, error_message text)
                ), inserted AS (
                    INSERT INTO {self.quote(self.execution_table)} (
                        job_id, status, trigger, scheduled_time, created_at, finished_at, error_message,
                        traceback, instance_id, hostname, celery_task_id
                    )
                    SELECT job_id, status, %(trigger)s, scheduled_time, %(created_at)s,
                           CASE WHEN status = %(pending)s THEN NULL ELSE %(now)s END, error_message,
                           '', %(instance_id)s, '', ''
                    FROM batch
                    -- a literal predicate, not a parameter: it must match the partial unique index
                    ON CONFLICT (job_id, scheduled_time) WHERE trigger = '{ExecutionTrigger.SCHEDULED}' DO NOTHING
                    RETURNING id, job_id, scheduled_time, status
                ), leases AS (
                    INSERT INTO {self.quote(self.lease_table)} (job_id, execution_id, locked_by, locked_at, expires_at)
                    SELECT job_id, id, %(instance_id)s, %(now)s, %(expires_at)s
                    FROM inserted WHERE status = %(pending)s
                )
                SELECT id, job_id, scheduled_time, status FROM inserted
                """,
                {
                    "runs": json.dumps(rows),
                    "trigger": trigger,
                    "now": now,
                    "created_at": clock.now(),  # the insert moment, on the database's clock
                    "pending": ExecutionStatus.PENDING,
                    "instance_id": instance_id,
                    "expires_at": lease_expires_at,
                },
            )
            return {run_key(job_id, at): (pk, status) for pk, job_id, at, status in cursor}

    def jobs_advance(self, jobs):
        rows = [
            {"id": pk, "next_run_time": _isoformat(nxt), "last_run_time": _isoformat(last)} for pk, nxt, last in jobs
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {self.quote(self.job_table)} AS job SET next_run_time = batch.next_run_time, "
                f"last_run_time = batch.last_run_time "
                f"FROM jsonb_to_recordset(%s::jsonb) AS batch(id bigint, next_run_time timestamptz, "
                f"last_run_time timestamptz) WHERE job.id = batch.id",
                [json.dumps(rows)],
            )

    def lifecycle_write(self, rows, ended_ids):
        """All rows in one UPDATE and the ended runs' leases in the same statement; returns the ids
        of the rows that moved.

        An ended run's lease goes only once its row is finished: a row whose end could not apply
        (its start was never recorded) keeps the lease, which expires and fails it with the reason.
        """
        table = self.quote(self.execution_table)
        assignments = ", ".join(
            [f"{c} = COALESCE(batch.{c}, e.{c})" for c in KEPT_UNLESS_GIVEN]
            # A result of None arrives as SQL NULL (jsonb_to_recordset turns a JSON null into one),
            # which is how Django's JSONField(null=True) stores None.
            + [f"{c} = batch.{c}" for c in ALWAYS_SET]
        )
        for row in rows:
            row["started_at"], row["finished_at"] = _isoformat(row["started_at"]), _isoformat(row["finished_at"])
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                WITH batch AS (
                    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS batch(
                        id bigint, source varchar, status varchar, started_at timestamptz, instance_id varchar,
                        hostname varchar, finished_at timestamptz, duration_ms integer, result jsonb,
                        error_message text, traceback text)
                ), updated AS (
                    UPDATE {table} AS e SET {assignments}
                    FROM batch WHERE e.id = batch.id AND e.status = batch.source
                    RETURNING e.id, e.status
                ), released AS (
                    DELETE FROM {self.quote(self.lease_table)} AS lease
                    WHERE lease.execution_id = ANY(%(ended)s::bigint[]) AND (
                        lease.execution_id IN (SELECT id FROM updated WHERE status <> ALL(%(unfinished)s))
                        -- the rest of the statement sees the rows as they were before the UPDATE
                        OR EXISTS (SELECT 1 FROM {table} AS done WHERE done.id = lease.execution_id
                                   AND done.status <> ALL(%(unfinished)s))
                    )
                )
                SELECT id FROM updated
                """,
                {
                    "rows": json.dumps(rows, cls=DjangoJSONEncoder),
                    "ended": "{" + ",".join(map(str, ended_ids)) + "}",
                    "unfinished": list(UNFINISHED_STATUSES),
                },
            )
            return {pk for (pk,) in cursor}

    def deliveries_claim(self, *, instance_id, now, lease_until, limit):
        """One statement: the due rows are locked with SKIP LOCKED, so a row another process is
        claiming is passed over, not waited for; the claim commits durably (claim_durable)."""
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {self.quote(self.delivery_table)} AS d
                SET status = %(sending)s, claimed_by = %(instance_id)s, attempts = d.attempts + 1,
                    lease_expires_at = %(lease_until)s, next_attempt_at = %(lease_until)s
                WHERE d.id IN (
                    SELECT id FROM {self.quote(self.delivery_table)}
                    WHERE status IN (%(pending)s, %(sending)s) AND next_attempt_at <= %(now)s
                    ORDER BY next_attempt_at, id
                    LIMIT %(limit)s
                    FOR UPDATE SKIP LOCKED
                )
                RETURNING d.id
                """,
                {
                    "sending": DeliveryStatus.SENDING,
                    "pending": DeliveryStatus.PENDING,
                    "instance_id": instance_id,
                    "lease_until": lease_until,
                    "now": now,
                    "limit": limit,
                },
            )
            return sorted(pk for (pk,) in cursor)

    def engine_sessions(self, *, is_engine_thread) -> None:
        """synchronous_commit off: run outcomes are recorded without waiting for the WAL flush, the
        largest single gain in runs per second (README, Performance); if PostgreSQL itself crashes,
        the last fraction of a second of outcomes may be lost, and those runs show as failed with
        "lease expired" once their lease runs out. Claims never depend on it (claim_durable).

        idle_in_transaction_session_timeout: a process cut off in the middle of a claim (a network
        partition, a frozen process) cannot keep the due rows it locked from the other processes
        for longer. statement_timeout and lock_timeout bound every statement of the engine's.
        """
        timeouts = {
            "idle_in_transaction_session_timeout": settings.SCHEDULER_DB_IDLE_IN_TRANSACTION_TIMEOUT,
            "statement_timeout": settings.SCHEDULER_DB_STATEMENT_TIMEOUT,
            "lock_timeout": settings.SCHEDULER_DB_STATEMENT_TIMEOUT,
        }
        statement = "SET synchronous_commit TO OFF; " + " ".join(
            f"SET {name} TO {int(seconds * 1000)};" for name, seconds in timeouts.items()
        )

        def configure(sender, connection, **kwargs):
            if connection.vendor == "postgresql" and is_engine_thread():
                with connection.cursor() as cursor:
                    cursor.execute(statement)

        connection_created.connect(configure, weak=False, dispatch_uid=ENGINE_SESSIONS)
        connection.close()  # reopened with the settings

    def connection_sever(self, wrapper) -> None:
        raw = wrapper.connection  # psycopg's Connection, or None before the first query
        if raw is None or raw.closed:
            return
        # shutdown() acts on the socket itself, so a duplicate of its descriptor is enough.
        duplicate = socket.socket(fileno=os.dup(raw.pgconn.socket))
        try:
            duplicate.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            duplicate.close()

    def database_now(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT clock_timestamp()")
            return cursor.fetchone()[0]

    def changes_announce(self, payload: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, payload])

    def change_listener(self, wakeup, stop_event):
        return ChangeListener(wakeup, stop_event)


def _conninfo() -> str:
    params = connection.get_connection_params()
    for django_only in ("cursor_factory", "context", "prepare_threshold", "server_side_binding"):
        params.pop(django_only, None)
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items() if v not in (None, "")})


class ChangeListener(threading.Thread):
    """LISTENs on its own connection and calls `wakeup` on every notification; reconnects with
    back-off when the server goes away."""

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

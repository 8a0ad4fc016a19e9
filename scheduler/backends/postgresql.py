"""PostgreSQL: set-based claim and outcome statements, asynchronous commit, LISTEN/NOTIFY.

Batches travel as one JSON document expanded by jsonb_to_recordset: Python's C encoder builds
it far faster than psycopg quotes thousands of separate values or array elements, and one
statement replaces a round trip per row.
"""

import functools
import json
import logging
import os
import socket
import threading

import psycopg
from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.signals import connection_created
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL

from scheduler import clock
from scheduler.backends.base import ALWAYS_SET, KEPT_UNLESS_GIVEN, UNFINISHED_SQL, Backend, run_key
from scheduler.enums import (
    FIRE_TIME_TRIGGERS,
    UNFINISHED_STATUSES,
    DeliveryStatus,
    ExecutionStatus,
    ExecutionTrigger,
)
from scheduler.models import JobLease, ScheduledJob

logger = logging.getLogger("scheduler.engine")
NOTIFY_CHANNEL = "scheduler_changes"
# Summary writers add to the row of shard (their session's pid % N): two sessions then rarely wait
# on the same row, while readers sum at most N rows per minute and status (or state).
SUMMARY_SHARDS = 4
TALLY_SHARDS = 16
# Below this many rows (by the planner's estimate) a list is counted exactly: counting is cheap there.
EXACT_COUNT_BELOW = 10_000
ENGINE_SESSIONS = "scheduler-engine-sessions"  # the connection_created receiver's dispatch_uid
# The predicate of the partial unique index scheduler_exec_unique_scheduled_run, as Django writes
# it: ON CONFLICT names the index by repeating it.
UNIQUE_FIRE_TIME_PREDICATE = "trigger IN ({})".format(", ".join(f"'{t}'" for t in FIRE_TIME_TRIGGERS))
# The advisory lock key of code registry syncs: any fixed number no other code of the database uses.
CODE_SYNC_LOCK_KEY = 0x5C4ED_C0DE


# The conditions of JobQuerySet.schedulable and ExecutionQuerySet.unclaimed, as the engine's raw
# reads repeat them (they must match the partial indexes those querysets' reads use).
_SCHEDULABLE = "is_active AND is_enabled AND NOT is_paused"
_UNCLAIMED = "status = %(pending)s AND instance_id = ''"
_UNCLAIMED_DUE = f"{_UNCLAIMED} AND (trigger <> %(retry)s OR scheduled_time <= %(now)s)"


def _unclaimed_params(now) -> dict:
    return {
        "now": now,
        "pending": ExecutionStatus.PENDING,
        "waiting": ExecutionStatus.WAITING,
        "retry": ExecutionTrigger.RETRY,
    }


@functools.cache
def _due_jobs_sql(columns: tuple[str, ...]) -> tuple[str, tuple[int, ...]]:
    """JobQuerySet.due(now, ahead_until=...) locking `columns` with the live-schedule lease count
    last, as one statement written once: building it through the ORM on every claim cost more
    than running it. Returns the SQL and the positions of jsonb columns."""
    selected, json_positions = [], []
    for position, path in enumerate(columns):
        model, alias, name = ScheduledJob, "job", path
        if "__" in path:
            relation, name = path.split("__")
            model, alias = ScheduledJob._meta.get_field(relation).related_model, relation
        field = model._meta.pk if name == "pk" else model._meta.get_field(name)
        selected.append(f"{alias}.{field.column}")
        if field.get_internal_type() == "JSONField":
            json_positions.append(position)
    joins = {path.split("__")[0] for path in columns if "__" in path}
    join_sql = "".join(
        f" JOIN {connection.ops.quote_name(ScheduledJob._meta.get_field(r).related_model._meta.db_table)} AS {r}"
        f" ON {r}.id = job.{ScheduledJob._meta.get_field(r).column}"
        for r in sorted(joins)
    )
    jobs = connection.ops.quote_name(ScheduledJob._meta.db_table)
    leases = connection.ops.quote_name(JobLease._meta.db_table)
    start = "COALESCE(job.next_start_at, job.next_run_time)"
    sql = f"""
        SELECT {", ".join(selected)},
               (SELECT count(*) FROM {leases} AS lease
                WHERE lease.job_id = job.id AND lease.expires_at > %(now)s AND NOT lease.is_backfill)
        FROM {jobs} AS job{join_sql}
        WHERE job.is_active AND job.is_enabled AND NOT job.is_paused
          AND ({start} <= %(now)s
               OR ({start} > %(now)s AND {start} <= %(ahead_until)s
                   AND NOT EXISTS (SELECT 1 FROM {leases} AS lease WHERE lease.job_id = job.id)))
        ORDER BY job.priority DESC, job.next_run_time, job.id
        LIMIT %(limit)s
        FOR UPDATE OF job SKIP LOCKED
    """
    return sql, tuple(json_positions)


def _isoformat(moment):
    # DjangoJSONEncoder would cut the microseconds; isoformat keeps them.
    return moment.isoformat() if moment is not None else None


class PostgreSQLBackend(Backend):
    vendor = "postgresql"
    change_notifications = "LISTEN/NOTIFY"
    lifecycle_write_atomic = True

    def with_ids(self, queryset, ids, field="pk"):
        # One array parameter: the ORM's IN (...) prepared each id in Python and psycopg then split
        # a statement of that many placeholders, a large part of a process's CPU at a crowd.
        model = queryset.model
        column = (model._meta.pk if field == "pk" else model._meta.get_field(field)).column
        condition = f"{self.quote(model._meta.db_table)}.{self.quote(column)} = ANY(%s::bigint[])"
        ids_text = "{" + ",".join(str(int(pk)) for pk in ids) + "}"
        return queryset.filter(RawSQL(condition, (ids_text,), output_field=BooleanField()))

    def claim_durable(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO ON")

    def code_sync_lock(self, using: str = "default") -> None:
        # A transaction-level advisory lock: released at commit or rollback, whatever happens.
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CODE_SYNC_LOCK_KEY])

    def runs_insert(self, runs, *, trigger, instance_id, now, lease_expires_at):
        rows = []
        for r in runs:
            row = {
                "job_id": r.job_id,
                "status": r.status,
                "scheduled_time": r.scheduled_time.isoformat(),
                "error_message": r.error_message,
                "args": r.args,
                "kwargs": r.kwargs,
            }
            if r.planned_start is not None:  # a key left out is NULL to jsonb_to_recordset
                row["planned_start"] = r.planned_start.isoformat()
            rows.append(row)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                WITH batch AS (
                    SELECT * FROM jsonb_to_recordset(%(runs)s::jsonb)
                    AS batch(job_id bigint, status varchar, scheduled_time timestamptz, error_message text,
                             args jsonb, kwargs jsonb, planned_start timestamptz)
                ), inserted AS (
                    INSERT INTO {self.quote(self.execution_table)} (
                        job_id, status, trigger, scheduled_time, created_at, finished_at, error_message,
                        traceback, instance_id, hostname, celery_task_id, args, kwargs, attempt, cancel_reason,
                        planned_start
                    )
                    SELECT job_id, status, %(trigger)s, scheduled_time, %(created_at)s,
                           CASE WHEN status IN (%(pending)s, %(waiting)s) THEN NULL ELSE %(now)s END, error_message,
                           '', CASE WHEN status = %(waiting)s THEN '' ELSE %(instance_id)s END, '', '',
                           args, kwargs, 1, '', planned_start
                    FROM batch
                    -- a literal predicate, not a parameter: it must match the partial unique index
                    ON CONFLICT (job_id, scheduled_time) WHERE {UNIQUE_FIRE_TIME_PREDICATE} DO NOTHING
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
                    "waiting": ExecutionStatus.WAITING,
                    "instance_id": instance_id,
                    "expires_at": lease_expires_at,
                },
            )
            return {run_key(job_id, at): (pk, status) for pk, job_id, at, status in cursor}

    def due_jobs_lock(self, columns, *, now, ahead_until, limit):
        sql, json_positions = _due_jobs_sql(columns)
        with connection.cursor() as cursor:
            cursor.execute(
                sql,
                {
                    "now": now,
                    "ahead_until": ahead_until if ahead_until is not None and ahead_until > now else now,
                    "limit": limit,
                },
            )
            rows = cursor.fetchall()
        held = {}
        for position, row in enumerate(rows):
            if json_positions:  # Django reads jsonb as text, for JSONField to decode
                row = list(row)
                for i in json_positions:
                    row[i] = None if row[i] is None else json.loads(row[i])
            if row[-1]:
                held[row[0]] = row[-1]
            rows[position] = tuple(row[:-1])
        return rows, held

    def runs_waiting(self):
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT EXISTS (SELECT 1 FROM {self.quote(self.execution_table)} WHERE status = %s)",
                [ExecutionStatus.WAITING],
            )
            return cursor.fetchone()[0]

    def claims_pending(self, now):
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT EXISTS (SELECT 1 FROM {self.quote(self.execution_table)} WHERE status = %(waiting)s), "
                f"EXISTS (SELECT 1 FROM {self.quote(self.execution_table)} WHERE {_UNCLAIMED_DUE})",
                _unclaimed_params(now),
            )
            return cursor.fetchone()

    def next_claim_times(self, now):
        executions, jobs = self.quote(self.execution_table), self.quote(self.job_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT EXISTS (SELECT 1 FROM {executions} WHERE {_UNCLAIMED_DUE}), "
                f"(SELECT min(scheduled_time) FROM {executions} WHERE {_UNCLAIMED}), "
                f"(SELECT min(COALESCE(next_start_at, next_run_time)) FROM {jobs} WHERE {_SCHEDULABLE})",
                _unclaimed_params(now),
            )
            return cursor.fetchone()

    def jobs_advance(self, jobs):
        rows = [
            {
                "id": pk,
                "next_run_time": _isoformat(nxt),
                "last_run_time": _isoformat(last),
                "next_start_at": _isoformat(start),
            }
            for pk, nxt, last, start in jobs
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {self.quote(self.job_table)} AS job SET next_run_time = batch.next_run_time, "
                f"last_run_time = batch.last_run_time, next_start_at = batch.next_start_at "
                f"FROM jsonb_to_recordset(%s::jsonb) AS batch(id bigint, next_run_time timestamptz, "
                f"last_run_time timestamptz, next_start_at timestamptz) WHERE job.id = batch.id",
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

        jit off: the engine's statements are short, and on a large table whose statistics are stale
        the planner's estimates can pass jit_above_cost, when compiling a claim took longer than
        running it (about a second per claim at a million jobs).
        """
        timeouts = {
            "idle_in_transaction_session_timeout": settings.SCHEDULER_DB_IDLE_IN_TRANSACTION_TIMEOUT,
            "statement_timeout": settings.SCHEDULER_DB_STATEMENT_TIMEOUT,
            "lock_timeout": settings.SCHEDULER_DB_STATEMENT_TIMEOUT,
        }
        statement = "SET synchronous_commit TO OFF; SET jit TO OFF; " + " ".join(
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

    # --- summaries ------------------------------------------------------------------------------------

    def sql_minute(self, moment: str) -> str:
        return f"date_trunc('minute', {moment})"

    def sql_milliseconds_between(self, later: str, earlier: str) -> str:
        return f"round(EXTRACT(EPOCH FROM {later} - {earlier}) * 1000)::bigint"

    def summaries_install(self, using=None) -> None:
        """Statement-level triggers with transition tables for executions: a batch of outcomes
        written in one UPDATE (the engine's recorder) costs one aggregate and a few upserts, not
        one per row. Row-level ones for jobs, which change state one at a time, and only when a
        state column changes (the engine's next_run_time writes never fire them)."""
        summary, tally = self.quote(self.summary_table), self.quote(self.tally_table)
        executions, jobs = self.quote(self.execution_table), self.quote(self.job_table)
        upsert = f"ON CONFLICT (minute, status, shard) DO UPDATE SET {self.summary_upsert_assignments('s.')}"
        shard = f"pg_backend_pid() % {SUMMARY_SHARDS}"
        inserted = self.summary_events_select("new_rows", shard=shard)
        updated = self.summary_events_select("new_rows", shard=shard, old="old_rows")
        columns = self.summary_columns()
        tally_shard = f"pg_backend_pid() % {TALLY_SHARDS}"

        def tally_add(row: str, delta: int) -> str:
            return (
                f"INSERT INTO {tally} AS t (is_active, is_enabled, is_paused, shard, jobs) "
                f"VALUES ({row}.is_active, {row}.is_enabled, {row}.is_paused, {tally_shard}, {delta}) "
                f"ON CONFLICT (is_active, is_enabled, is_paused, shard) DO UPDATE SET jobs = t.jobs + {delta};"
            )

        statements = [
            f"""CREATE OR REPLACE FUNCTION scheduler_summary_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO {summary} AS s ({columns}) {inserted} {upsert};
                RETURN NULL;
            END $$""",
            f"""CREATE OR REPLACE FUNCTION scheduler_summary_updated() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO {summary} AS s ({columns}) {updated} {upsert};
                RETURN NULL;
            END $$""",
            f"CREATE OR REPLACE TRIGGER scheduler_summary_inserted AFTER INSERT ON {executions} "
            f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION scheduler_summary_inserted()",
            f"CREATE OR REPLACE TRIGGER scheduler_summary_updated AFTER UPDATE ON {executions} "
            f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
            f"EXECUTE FUNCTION scheduler_summary_updated()",
            # The two upserts of a move go in a fixed order (the state that sorts first), so two
            # sessions moving jobs in opposite directions cannot deadlock on each other's rows.
            f"""CREATE OR REPLACE FUNCTION scheduler_jobtally_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'INSERT' THEN
                    {tally_add("NEW", 1)}
                ELSIF TG_OP = 'DELETE' THEN
                    {tally_add("OLD", -1)}
                ELSIF (OLD.is_active, OLD.is_enabled, OLD.is_paused)
                      < (NEW.is_active, NEW.is_enabled, NEW.is_paused) THEN
                    {tally_add("OLD", -1)}
                    {tally_add("NEW", 1)}
                ELSE
                    {tally_add("NEW", 1)}
                    {tally_add("OLD", -1)}
                END IF;
                RETURN NULL;
            END $$""",
            f"CREATE OR REPLACE TRIGGER scheduler_jobtally_added_removed AFTER INSERT OR DELETE ON {jobs} "
            f"FOR EACH ROW EXECUTE FUNCTION scheduler_jobtally_changed()",
            f"CREATE OR REPLACE TRIGGER scheduler_jobtally_moved AFTER UPDATE OF is_active, is_enabled, is_paused "
            f"ON {jobs} FOR EACH ROW WHEN ((OLD.is_active, OLD.is_enabled, OLD.is_paused) IS DISTINCT FROM "
            f"(NEW.is_active, NEW.is_enabled, NEW.is_paused)) EXECUTE FUNCTION scheduler_jobtally_changed()",
        ]
        with connections[using or DEFAULT_DB_ALIAS].cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    def summaries_uninstall(self, using=None) -> None:
        with connections[using or DEFAULT_DB_ALIAS].cursor() as cursor:
            for table, trigger in (
                (self.execution_table, "scheduler_summary_inserted"),
                (self.execution_table, "scheduler_summary_updated"),
                (self.job_table, "scheduler_jobtally_added_removed"),
                (self.job_table, "scheduler_jobtally_moved"),
            ):
                cursor.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {self.quote(table)}")
            for function in ("scheduler_summary_inserted", "scheduler_summary_updated", "scheduler_jobtally_changed"):
                cursor.execute(f"DROP FUNCTION IF EXISTS {function}()")

    # --- counts ----------------------------------------------------------------------------------------

    def row_estimate(self, queryset) -> int | None:
        """The whole table: pg_class.reltuples (kept by VACUUM and ANALYZE). Filtered: the
        planner's estimate of the query, from the same statistics; None when it is small enough
        to count exactly, or when the table was never analysed."""
        db = connections[queryset.db]
        with db.cursor() as cursor:
            if not queryset.query.where:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [queryset.model._meta.db_table]
                )
                row = cursor.fetchone()
                estimate = row[0] if row else -1
            else:
                try:
                    sql, params = queryset.order_by().values("pk").query.sql_with_params()
                except EmptyResultSet:  # .none(), or a filter that can match nothing
                    return None
                cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
                plan = cursor.fetchone()[0]
                plan = json.loads(plan) if isinstance(plan, str) else plan
                estimate = int(plan[0]["Plan"]["Plan Rows"])
        return estimate if estimate >= EXACT_COUNT_BELOW else None

    # --- retention ------------------------------------------------------------------------------------

    def executions_delete_old(self, *, cutoff, after, batch_size):
        """One statement: walk the next rows through the (created_at, id) index from where the last
        batch stopped (so no batch scans what an earlier one deleted), delete the finished ones
        and their leases, and say where the walk got to."""
        executions, leases = self.quote(self.execution_table), self.quote(self.lease_table)
        resume = "AND (created_at, id) > (%(after_at)s, %(after_id)s)" if after else ""
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                WITH walked AS (
                    SELECT id, created_at, status FROM {executions}
                    WHERE created_at < %(cutoff)s {resume}
                    ORDER BY created_at, id LIMIT %(batch)s
                ), doomed AS (
                    SELECT id FROM walked WHERE status NOT IN ({UNFINISHED_SQL})
                ), released AS (
                    DELETE FROM {leases} WHERE execution_id IN (SELECT id FROM doomed)
                ), gone AS (
                    -- the status again at delete time: a row picked for the batch may have moved
                    DELETE FROM {executions} WHERE id IN (SELECT id FROM doomed) AND status NOT IN ({UNFINISHED_SQL})
                    RETURNING 1
                )
                SELECT (SELECT count(*) FROM gone), last.created_at, last.id, last.walked
                FROM (SELECT created_at, id, (SELECT count(*) FROM walked) AS walked FROM walked
                      ORDER BY created_at DESC, id DESC LIMIT 1) AS last
                """,
                {
                    "cutoff": cutoff,
                    "after_at": after[0] if after else None,
                    "after_id": after[1] if after else None,
                    "batch": batch_size,
                },
            )
            row = cursor.fetchone()
        if row is None:
            return 0, None
        deleted, last_at, last_id, walked = row
        return deleted, ((last_at, last_id) if walked >= batch_size else None)

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

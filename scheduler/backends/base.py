"""The interface every database backend implements, and the values that cross it."""

import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Count, Min

from scheduler.enums import FINISHED_STATUSES, RAN_STATUSES, UNFINISHED_STATUSES, ExecutionStatus, ExecutionTrigger
from scheduler.models import (
    SUMMARY_BUCKETS,
    ExecutionSummary,
    JobExecution,
    JobLease,
    JobTally,
    NotificationDelivery,
    ScheduledJob,
)

# The columns of a lifecycle row (services.executions): a None in these keeps what the row
# holds; the outcome columns are always set.
KEPT_UNLESS_GIVEN = ("started_at", "instance_id", "hostname", "error_message", "traceback")
ALWAYS_SET = ("status", "finished_at", "duration_ms", "result")


class SchedulerAlreadyRunning(Exception):
    """A second scheduler process on a database that supports only one (SQLite)."""


@dataclass(slots=True)
class NewRun:
    """An execution row a claim inserts; a pending one gets its lease in the same write, a waiting
    one stays unclaimed (no process, no lease) until a later claim starts it."""

    job_id: int
    status: str
    scheduled_time: datetime
    error_message: str
    args: list | None = None
    kwargs: dict | None = None
    planned_start: datetime | None = None  # with jitter: when the fire time was to start


def run_key(job_id: int, scheduled_time: datetime) -> tuple[int, datetime]:
    """How an inserted row is matched to its run. In UTC: aware datetimes in different zones can
    compare unequal at the same instant (the second occurrence of a repeated wall-clock time,
    PEP 495)."""
    return job_id, scheduled_time.astimezone(UTC)


class Backend:
    """What the services and the engine ask of the database beyond plain ORM reads and writes."""

    vendor = ""
    # How scheduler processes hear about changes: "LISTEN/NOTIFY" or "poll".
    change_notifications = "poll"
    execution_table = JobExecution._meta.db_table
    lease_table = JobLease._meta.db_table
    job_table = ScheduledJob._meta.db_table
    summary_table = ExecutionSummary._meta.db_table
    tally_table = JobTally._meta.db_table
    delivery_table = NotificationDelivery._meta.db_table

    # --- claims -------------------------------------------------------------------------------

    def claim_durable(self) -> None:
        """Make the current transaction wait for its commit to be durable, whatever the session's
        setting: claims are what make runs happen exactly once."""

    def runs_insert(
        self, runs: list[NewRun], *, trigger: str, instance_id: str, now: datetime, lease_expires_at: datetime
    ) -> dict[tuple[int, datetime], tuple[int, str]]:
        """Insert claimed runs and the leases of the pending ones (waiting ones are left unclaimed
        and unfinished, skipped and missed ones finished at `now`); a run whose (job,
        scheduled_time) already exists is dropped. Returns {run_key: (execution id, status)} of
        the rows inserted."""
        raise NotImplementedError

    def due_jobs_lock(
        self, columns: tuple[str, ...], *, now: datetime, ahead_until: datetime | None, limit: int
    ) -> tuple[list[tuple], dict[int, int]]:
        """Lock up to `limit` due jobs (JobQuerySet.due, its order, SKIP LOCKED) and read `columns`
        of each (field paths as values_list takes them, "pk" first); also the live leases of the
        live schedule per job, as services.leases.leases_held counts them (absent: none)."""
        rows = list(
            ScheduledJob.objects.due(now, ahead_until=ahead_until)
            .select_for_update(skip_locked=True, of=("self",))
            .values_list(*columns)[:limit]
        )
        held = dict(
            JobLease.objects.live(now)
            .filter(job_id__in={row[0] for row in rows}, is_backfill=False)
            .values_list("job_id")
            .annotate(n=Count("pk"))
            .order_by()
        )
        return rows, held

    def runs_waiting(self) -> bool:
        """Whether any run waits for a slot (ExecutionQuerySet.waiting)."""
        return JobExecution.objects.waiting().exists()

    def claims_pending(self, now: datetime) -> tuple[bool, bool]:
        """(Any run waiting for a slot, any unclaimed run due by `now`): whether a claim needs to
        look for either."""
        return self.runs_waiting(), JobExecution.objects.unclaimed(now).exists()

    def next_claim_times(self, now: datetime) -> tuple[bool, datetime | None, datetime | None]:
        """What the engine sleeps until: (an unclaimed run is due by `now`, the earliest unclaimed
        run's scheduled time, the earliest start of a schedulable job)."""
        unclaimed_due = JobExecution.objects.unclaimed(now).exists()
        unclaimed_at = JobExecution.objects.unclaimed().aggregate(t=Min("scheduled_time"))["t"]
        return unclaimed_due, unclaimed_at, ScheduledJob.objects.next_start()

    def jobs_advance(self, jobs: list[tuple[int, datetime | None, datetime | None, datetime | None]]) -> None:
        """Write (job id, next_run_time, last_run_time, next_start_at) of each claimed job."""
        raise NotImplementedError

    # --- notifications ------------------------------------------------------------------------

    def deliveries_claim(self, *, instance_id: str, now: datetime, lease_until: datetime, limit: int) -> list[int]:
        """Claim up to `limit` due notification deliveries for this process (services.deliveries):
        each moves to sending, held until `lease_until`, with one more attempt counted. Two
        processes never claim the same delivery. Returns their ids."""
        raise NotImplementedError

    # --- run outcomes ----------------------------------------------------------------------------

    # Whether lifecycle_write is one statement (a transaction by itself, outside an atomic block).
    lifecycle_write_atomic = False

    def lifecycle_write(self, rows: list[dict], ended_ids: list[int]) -> set[int]:
        """Apply conditional lifecycle updates (services.executions.executions_record builds the
        rows), delete the leases of ended runs whose rows are finished, and return the ids of the
        rows that moved (a row already moved on by someone else stays as it is)."""
        raise NotImplementedError

    def engine_sessions(self, *, is_engine_thread) -> None:
        """Configure the sessions the scheduler engine's own threads open from now on (those for
        which is_engine_thread() is true; task functions' threads keep the defaults): ordinary
        commits (run outcomes) need not wait for durability (claim_durable still does), and
        server-side timeouts end a session stuck in a transaction or a statement."""

    def connection_sever(self, wrapper) -> None:
        """Cut a Django connection under whatever thread is waiting on it, so the wait fails at
        once (engine/watchdog.py); a no-op where connections have no socket."""

    def database_now(self) -> datetime | None:
        """The database server's clock, or None where the database has no clock of its own
        (SQLite lives on this host)."""
        return None

    # --- change notification -----------------------------------------------------------------------

    def changes_announce(self, payload: str) -> None:
        """Tell every scheduler process, now, that something changed (called after commit)."""

    def change_listener(self, wakeup, stop_event: threading.Event) -> threading.Thread | None:
        """A thread calling `wakeup` on each announcement, or None where there are none to hear."""
        return None

    def poll_interval(self, configured: float) -> float:
        """Seconds between the engine's re-reads of the database."""
        return configured

    # --- syncs of the code registry ------------------------------------------------------------------

    def code_sync_lock(self, using: str = "default") -> None:
        """Inside a transaction on `using`: wait for, and hold until it ends, the lock that lets one
        process at a time sync the code registry (task functions, declared jobs) into the tables.
        Several processes starting together (schedulers, a migrate) then sync one after the other,
        each seeing what the one before it committed."""
        raise NotImplementedError

    # --- processes ----------------------------------------------------------------------------------

    def single_process_guard(self) -> None:
        """Refuse (SchedulerAlreadyRunning) a second scheduler process where only one may run."""

    def quote(self, name: str) -> str:
        return connection.ops.quote_name(name)

    def with_ids(self, queryset, ids, field: str = "pk"):
        """queryset.filter(<field>__in=ids), written so that a long list (the runs of a crowd a
        process holds) costs the database's cheapest form where it has one."""
        return queryset.filter(**{f"{field}__in": list(ids)})

    # --- summaries the database keeps (models.ExecutionSummary, models.JobTally) --------------------

    def summaries_install(self, using=None) -> None:
        """Create, or replace, the triggers that keep ExecutionSummary and JobTally in step with the
        executions and jobs tables. Idempotent; run after every migrate (SQLite drops a table's
        triggers when a migration rebuilds the table)."""
        raise NotImplementedError

    def summaries_uninstall(self, using=None) -> None:
        """Drop those triggers (undoing the migration that introduced them)."""
        raise NotImplementedError

    def summaries_rebuild(self, using=None) -> None:
        """Recount both summaries from the tables, in one transaction: once when they are
        introduced, and after a bulk load that bypassed the triggers."""
        with transaction.atomic(using=using), connections[using or DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute(f"DELETE FROM {self.quote(self.summary_table)}")
            cursor.execute(
                f"INSERT INTO {self.quote(self.summary_table)} ({self.summary_columns()}) "
                f"{self.summary_events_select(self.quote(self.execution_table), shard='0')}"
            )
            cursor.execute(f"DELETE FROM {self.quote(self.tally_table)}")
            cursor.execute(
                f"INSERT INTO {self.quote(self.tally_table)} (is_active, is_enabled, is_paused, shard, jobs) "
                f"SELECT is_active, is_enabled, is_paused, 0, count(*) FROM {self.quote(self.job_table)} "
                f"GROUP BY is_active, is_enabled, is_paused"
            )

    # The pieces of SQL each backend spells its own way.
    def sql_minute(self, moment: str) -> str:
        """The start of the UTC minute of a timestamp column or expression."""
        raise NotImplementedError

    def sql_milliseconds_between(self, later: str, earlier: str) -> str:
        raise NotImplementedError

    sql_now = "CURRENT_TIMESTAMP"

    @staticmethod
    def summary_columns() -> str:
        buckets = ", ".join(name for name, _ in SUMMARY_BUCKETS)
        return f"minute, status, shard, runs, timed, total_ms, max_ms, {buckets}"

    def summary_events(self, new: str, old: str | None = None) -> str:
        """SELECT of (at, status, ms) events: an end when a row enters a finished status (ms: the
        run's duration, for success and failed), a start when it gets a started_at (ms: its fire
        lag, for scheduled runs). `new` rows as they are; `old`, when given, the same rows (joined
        on id) before an UPDATE, so only what this statement changed counts."""
        finished = _sql_list(FINISHED_STATUSES)
        ran = _sql_list(RAN_STATUSES)
        if old is None:
            source, ended, started = f"{new} n", f"n.status IN ({finished})", "n.started_at IS NOT NULL"
        else:
            source = f"{new} n JOIN {old} o ON o.id = n.id"
            ended = f"n.status IN ({finished}) AND o.status NOT IN ({finished})"
            started = "n.started_at IS NOT NULL AND o.started_at IS NULL"
        lag = self.sql_milliseconds_between("n.started_at", "n.scheduled_time")
        return (
            f"SELECT COALESCE(n.finished_at, {self.sql_now}) AS at, n.status AS status, "
            f"CASE WHEN n.status IN ({ran}) THEN n.duration_ms END AS ms FROM {source} WHERE {ended} "
            f"UNION ALL "
            f"SELECT n.started_at, '{ExecutionStatus.RUNNING}', "
            f"CASE WHEN n.trigger = '{ExecutionTrigger.SCHEDULED}' THEN {lag} END FROM {source} WHERE {started}"
        )

    def summary_events_select(self, new: str, *, shard: str, old: str | None = None) -> str:
        """The summary rows (in summary_columns() order) that these events add, one per minute and status."""
        buckets = ", ".join(f"SUM(CASE WHEN ms <= {bound} THEN 1 ELSE 0 END)" for _, bound in SUMMARY_BUCKETS)
        minute = self.sql_minute("at")
        return (
            f"SELECT {minute}, status, {shard}, COUNT(*), COUNT(ms), COALESCE(SUM(ms), 0), MAX(ms), {buckets} "
            f"FROM ({self.summary_events(new, old)}) AS events GROUP BY {minute}, status ORDER BY 1, 2"
        )

    @staticmethod
    def summary_upsert_assignments(target: str) -> str:
        """ON CONFLICT ... DO UPDATE assignments adding a new summary row to the existing one."""
        sums = ["runs", "timed", "total_ms", *(name for name, _ in SUMMARY_BUCKETS)]
        added = [f"{c} = {target}{c} + excluded.{c}" for c in sums]
        return ", ".join(
            [
                *added,
                f"max_ms = CASE WHEN {target}max_ms IS NULL OR excluded.max_ms > {target}max_ms "
                f"THEN excluded.max_ms ELSE {target}max_ms END",
            ]
        )

    # --- counts -------------------------------------------------------------------------------------

    def row_estimate(self, queryset) -> int | None:
        """The database's own estimate of how many rows `queryset` holds, without counting them;
        None where there is none (SQLite), and the caller counts."""
        return None

    # --- retention ----------------------------------------------------------------------------------

    def executions_delete_old(self, *, cutoff: datetime, after: tuple | None, batch_size: int):
        """Delete the finished executions among the next `batch_size` rows created before `cutoff`,
        walking (created_at, id) upwards from `after` (None: from the oldest), with their leases.
        Returns (deleted, the last (created_at, id) walked, or None when the walk is over). Rows
        still pending or running are walked past and kept. Each call is one short transaction."""
        raise NotImplementedError


def _sql_list(values) -> str:
    """Literal SQL list of the scheduler's own status or trigger names (never user input)."""
    return ", ".join(f"'{value}'" for value in values)


UNFINISHED_SQL = _sql_list(UNFINISHED_STATUSES)

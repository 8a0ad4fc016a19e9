"""The interface every database backend implements, and the values that cross it."""

import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection

from scheduler.models import JobExecution, JobLease, NotificationDelivery, ScheduledJob

# The columns of a lifecycle row (services.executions): a None in these keeps what the row
# holds; the outcome columns are always set.
KEPT_UNLESS_GIVEN = ("started_at", "instance_id", "hostname", "error_message", "traceback")
ALWAYS_SET = ("status", "finished_at", "duration_ms", "result")


class SchedulerAlreadyRunning(Exception):
    """A second scheduler process on a database that supports only one (SQLite)."""


@dataclass(slots=True)
class NewRun:
    """An execution row a claim inserts; a pending one gets its lease in the same write."""

    job_id: int
    status: str
    scheduled_time: datetime
    error_message: str


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
    delivery_table = NotificationDelivery._meta.db_table

    # --- claims -------------------------------------------------------------------------------

    def claim_durable(self) -> None:
        """Make the current transaction wait for its commit to be durable, whatever the session's
        setting: claims are what make runs happen exactly once."""

    def runs_insert(
        self, runs: list[NewRun], *, trigger: str, instance_id: str, now: datetime, lease_expires_at: datetime
    ) -> dict[tuple[int, datetime], tuple[int, str]]:
        """Insert claimed runs and the leases of the pending ones; a run whose (job,
        scheduled_time) already exists is dropped. Returns {run_key: (execution id, status)} of
        the rows inserted."""
        raise NotImplementedError

    def jobs_advance(self, jobs: list[tuple[int, datetime | None, datetime | None]]) -> None:
        """Write (job id, next_run_time, last_run_time) of each claimed job."""
        raise NotImplementedError

    # --- notifications ------------------------------------------------------------------------

    def deliveries_claim(self, *, instance_id: str, now: datetime, lease_until: datetime, limit: int) -> list[int]:
        """Claim up to `limit` due notification deliveries for this process (services.deliveries):
        each moves to sending, held until `lease_until`, with one more attempt counted. Two
        processes never claim the same delivery. Returns their ids."""
        raise NotImplementedError

    # --- run outcomes ----------------------------------------------------------------------------

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

    # --- processes ----------------------------------------------------------------------------------

    def single_process_guard(self) -> None:
        """Refuse (SchedulerAlreadyRunning) a second scheduler process where only one may run."""

    def quote(self, name: str) -> str:
        return connection.ops.quote_name(name)

"""SQLite: one scheduler process at a time, plain ORM statements, changes found by polling."""

import fcntl
from pathlib import Path

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.db.models import F

from scheduler.backends.base import (
    ALWAYS_SET,
    KEPT_UNLESS_GIVEN,
    UNFINISHED_SQL,
    Backend,
    SchedulerAlreadyRunning,
    run_key,
)
from scheduler.enums import UNFINISHED_STATUSES, DeliveryStatus, ExecutionStatus
from scheduler.models import JobExecution, JobLease, NotificationDelivery, ScheduledJob, TaskFunction

# Without LISTEN/NOTIFY the poll is the only way to hear about manual runs soon.
MAX_POLL_INTERVAL = 0.5
TRIGGERS = (
    "scheduler_summary_inserted",
    "scheduler_summary_updated",
    "scheduler_jobtally_added",
    "scheduler_jobtally_removed",
    "scheduler_jobtally_moved",
)


class SQLiteBackend(Backend):
    vendor = "sqlite"

    def __init__(self):
        self._guard_file = None

    def code_sync_lock(self, using: str = "default") -> None:
        # A write statement takes the database's write lock (held to the end of the transaction)
        # even when it changes no row; the settings' IMMEDIATE transactions already hold it, this
        # makes the lock not depend on them.
        with connections[using].cursor() as cursor:
            cursor.execute(f"UPDATE {self.quote(TaskFunction._meta.db_table)} SET id = id WHERE 0 = 1")

    def runs_insert(self, runs, *, trigger, instance_id, now, lease_expires_at):
        executions = [
            JobExecution(
                job_id=r.job_id,
                status=r.status,
                trigger=trigger,
                scheduled_time=r.scheduled_time,
                instance_id="" if r.status == ExecutionStatus.WAITING else instance_id,
                error_message=r.error_message,
                finished_at=None if r.status in (ExecutionStatus.PENDING, ExecutionStatus.WAITING) else now,
                args=r.args,
                kwargs=r.kwargs,
                planned_start=r.planned_start,
            )
            for r in runs
        ]
        inserted = _insert_dropping_duplicates(executions)
        JobLease.objects.take(
            [e for e in inserted if e.status == ExecutionStatus.PENDING],
            instance_id=instance_id,
            now=now,
            expires_at=lease_expires_at,
        )
        return {run_key(e.job_id, e.scheduled_time): (e.pk, e.status) for e in inserted}

    def jobs_advance(self, jobs):
        # Django's bulk_update would build a CASE expression per row, which costs more than the
        # rest of the claim; one parameterised statement per row does not.
        field = ScheduledJob._meta.get_field
        with connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {self.quote(self.job_table)} SET next_run_time = %s, last_run_time = %s, next_start_at = %s "
                f"WHERE id = %s",
                [
                    (
                        field("next_run_time").get_db_prep_save(nxt, connection),
                        field("last_run_time").get_db_prep_save(last, connection),
                        field("next_start_at").get_db_prep_save(start, connection),
                        pk,
                    )
                    for pk, nxt, last, start in jobs
                ],
            )

    def lifecycle_write(self, rows, ended_ids):
        field = JobExecution._meta.get_field
        assignments = ", ".join(
            [f"{c} = COALESCE(%s, {c})" for c in KEPT_UNLESS_GIVEN] + [f"{c} = %s" for c in ALWAYS_SET]
        )
        statement = f"UPDATE {self.quote(self.execution_table)} SET {assignments} WHERE id = %s AND status = %s"
        moved = set()
        with connection.cursor() as cursor:
            # One statement per row: SQLite answers in-process, and each row's count says whether it moved.
            for row in rows:
                values = [field(c).get_db_prep_save(row[c], connection) for c in (*KEPT_UNLESS_GIVEN, *ALWAYS_SET)]
                cursor.execute(statement, [*values, row["id"], row["source"]])
                if cursor.rowcount:
                    moved.add(row["id"])
        if ended_ids:
            JobLease.objects.filter(execution_id__in=ended_ids).exclude(
                execution__status__in=UNFINISHED_STATUSES
            ).delete()
        return moved

    # --- summaries --------------------------------------------------------------------------------

    # Django stores datetimes here as UTC text, 'YYYY-MM-DD HH:MM:SS[.ffffff]'.
    def sql_minute(self, moment: str) -> str:
        return f"strftime('%Y-%m-%d %H:%M:00', {moment})"

    def sql_milliseconds_between(self, later: str, earlier: str) -> str:
        return f"CAST(round((julianday({later}) - julianday({earlier})) * 86400000) AS INTEGER)"

    def summaries_install(self, using=None) -> None:
        """Row-level triggers (SQLite has no other kind), dropped and created again: a migration
        that rebuilds a table drops its triggers, so this runs after every migrate."""
        summary, tally = self.quote(self.summary_table), self.quote(self.tally_table)
        executions, jobs = self.quote(self.execution_table), self.quote(self.job_table)
        columns = self.summary_columns()
        upsert = f"ON CONFLICT (minute, status, shard) DO UPDATE SET {self.summary_upsert_assignments('')}"
        # One row's events, as a one-row table the shared SELECT reads: NEW (and OLD) are not tables here.
        row = (
            "(SELECT NEW.id AS id, NEW.status AS status, NEW.trigger AS trigger, "
            "NEW.scheduled_time AS scheduled_time, NEW.started_at AS started_at, "
            "NEW.finished_at AS finished_at, NEW.duration_ms AS duration_ms)"
        )
        old_row = "(SELECT OLD.id AS id, OLD.status AS status, OLD.started_at AS started_at)"
        inserted = self.summary_events_select(row, shard="0")
        updated = self.summary_events_select(row, shard="0", old=old_row)

        def tally_add(source: str, delta: int) -> str:
            return (
                f"INSERT INTO {tally} (is_active, is_enabled, is_paused, shard, jobs) "
                f"VALUES ({source}.is_active, {source}.is_enabled, {source}.is_paused, 0, {delta}) "
                f"ON CONFLICT (is_active, is_enabled, is_paused, shard) DO UPDATE SET jobs = jobs + {delta};"
            )

        triggers = {  # the names are TRIGGERS
            # "WHERE true": SQLite needs it to tell an upsert's ON from a join's after INSERT ... SELECT.
            "scheduler_summary_inserted": f"AFTER INSERT ON {executions} BEGIN "
            f"INSERT INTO {summary} ({columns}) SELECT * FROM ({inserted}) WHERE true {upsert}; END",
            "scheduler_summary_updated": f"AFTER UPDATE ON {executions} BEGIN "
            f"INSERT INTO {summary} ({columns}) SELECT * FROM ({updated}) WHERE true {upsert}; END",
            "scheduler_jobtally_added": f"AFTER INSERT ON {jobs} BEGIN {tally_add('NEW', 1)} END",
            "scheduler_jobtally_removed": f"AFTER DELETE ON {jobs} BEGIN {tally_add('OLD', -1)} END",
            "scheduler_jobtally_moved": f"AFTER UPDATE OF is_active, is_enabled, is_paused ON {jobs} "
            f"WHEN OLD.is_active IS NOT NEW.is_active OR OLD.is_enabled IS NOT NEW.is_enabled "
            f"OR OLD.is_paused IS NOT NEW.is_paused BEGIN {tally_add('OLD', -1)} {tally_add('NEW', 1)} END",
        }
        with transaction.atomic(using=using), connections[using or DEFAULT_DB_ALIAS].cursor() as cursor:
            for name, body in triggers.items():
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
                cursor.execute(f"CREATE TRIGGER {name} {body}")

    def summaries_uninstall(self, using=None) -> None:
        with connections[using or DEFAULT_DB_ALIAS].cursor() as cursor:
            for name in TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")

    # --- retention --------------------------------------------------------------------------------

    def executions_delete_old(self, *, cutoff, after, batch_size):
        walked = JobExecution.objects.filter(created_at__lt=cutoff)
        if after:
            walked = walked.extra(where=["(created_at, id) > (%s, %s)"], params=[_db_time(after[0]), after[1]])
        rows = list(walked.order_by("created_at", "pk").values_list("pk", "created_at", "status")[:batch_size])
        doomed = [pk for pk, _, status in rows if status not in UNFINISHED_STATUSES]
        deleted = 0
        if doomed:
            marks = ", ".join("%s" for _ in doomed)
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {self.quote(self.lease_table)} WHERE execution_id IN ({marks})", doomed)
                cursor.execute(
                    f"DELETE FROM {self.quote(self.execution_table)} WHERE id IN ({marks}) "
                    f"AND status NOT IN ({UNFINISHED_SQL})",
                    doomed,
                )
                deleted = cursor.rowcount
        last = (rows[-1][1], rows[-1][0]) if len(rows) >= batch_size else None
        return deleted, last

    def deliveries_claim(self, *, instance_id, now, lease_until, limit):
        # One scheduler process, and the IMMEDIATE transaction holds the write lock from BEGIN.
        with transaction.atomic():
            ids = list(
                NotificationDelivery.objects.due(now)
                .order_by("next_attempt_at", "pk")
                .values_list("pk", flat=True)[:limit]
            )
            NotificationDelivery.objects.filter(pk__in=ids).update(
                status=DeliveryStatus.SENDING,
                claimed_by=instance_id,
                attempts=F("attempts") + 1,
                lease_expires_at=lease_until,
                next_attempt_at=lease_until,
            )
        return ids

    def poll_interval(self, configured: float) -> float:
        return min(configured, MAX_POLL_INTERVAL)

    def single_process_guard(self) -> None:
        """An exclusive lock on a file beside the database, held for the life of the process."""
        name = connection.settings_dict["NAME"]
        handle = open(Path(str(name) + ".scheduler.lock"), "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise SchedulerAlreadyRunning(
                f"Another scheduler process is already running on this SQLite database ({name}). "
                f"SQLite supports a single scheduler process; use PostgreSQL "
                f"(DATABASE_URL=postgres://...) to run several."
            ) from None
        self._guard_file = handle


def _db_time(moment):
    return JobExecution._meta.get_field("created_at").get_db_prep_value(moment, connection)


def _insert_dropping_duplicates(executions: list[JobExecution]) -> list[JobExecution]:
    """Insert in bulk; if a (job, scheduled_time) already ran, drop that one run and keep the rest."""
    try:
        with transaction.atomic():
            JobExecution.objects.bulk_create(executions)
        return executions
    except IntegrityError:
        pass
    inserted = []
    for execution in executions:
        execution.pk = None
        try:
            with transaction.atomic():
                execution.save(force_insert=True)
            inserted.append(execution)
        except IntegrityError:
            execution.pk = None
    return inserted

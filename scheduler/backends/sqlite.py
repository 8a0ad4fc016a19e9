"""SQLite: one scheduler process at a time, plain ORM statements, changes found by polling."""

import fcntl
from pathlib import Path

from django.db import IntegrityError, connection, transaction
from django.db.models import F

from scheduler.backends.base import ALWAYS_SET, KEPT_UNLESS_GIVEN, Backend, SchedulerAlreadyRunning, run_key
from scheduler.enums import UNFINISHED_STATUSES, DeliveryStatus, ExecutionStatus
from scheduler.models import JobExecution, JobLease, NotificationDelivery, ScheduledJob

# Without LISTEN/NOTIFY the poll is the only way to hear about manual runs soon.
MAX_POLL_INTERVAL = 0.5


class SQLiteBackend(Backend):
    vendor = "sqlite"

    def __init__(self):
        self._guard_file = None

    def runs_insert(self, runs, *, trigger, instance_id, now, lease_expires_at):
        executions = [
            JobExecution(
                job_id=r.job_id,
                status=r.status,
                trigger=trigger,
                scheduled_time=r.scheduled_time,
                instance_id=instance_id,
                error_message=r.error_message,
                finished_at=None if r.status == ExecutionStatus.PENDING else now,
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
                f"UPDATE {self.quote(self.job_table)} SET next_run_time = %s, last_run_time = %s WHERE id = %s",
                [
                    (
                        field("next_run_time").get_db_prep_save(nxt, connection),
                        field("last_run_time").get_db_prep_save(last, connection),
                        pk,
                    )
                    for pk, nxt, last in jobs
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

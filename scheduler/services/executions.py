"""Services for executions: the lifecycle pending -> running -> success | failed, skips, misses, cleanup."""
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from scheduler.models import ExecutionStatus, JobExecution, ScheduledJobLock

S = ExecutionStatus
# Which states each state may be entered from. pending -> failed covers runs that could not be
# started at all (inactive task function, broker down, lease expired before the worker began).
ALLOWED_SOURCES = {
    S.RUNNING: {S.PENDING},
    S.SUCCESS: {S.RUNNING},
    S.FAILED: {S.PENDING, S.RUNNING},
    S.SKIPPED: {S.PENDING},
    S.MISSED: {S.PENDING},
}
CLEANUP_BATCH_SIZE = 1000

logger = logging.getLogger(__name__)


class InvalidTransition(Exception):
    """The execution is not in a state that allows the requested change."""


def _transition(execution: JobExecution, to: str, sources=None, **fields) -> JobExecution:
    """Move an execution to `to` atomically: a conditional UPDATE, so racing callers cannot both win."""
    sources = ALLOWED_SOURCES[to] if sources is None else sources
    updated = JobExecution.objects.filter(pk=execution.pk, status__in=sources).update(status=to, **fields)
    if not updated:
        current = JobExecution.objects.filter(pk=execution.pk).values_list("status", flat=True).first()
        raise InvalidTransition(
            f"Execution {execution.pk} is {current or 'gone'}; it cannot become {to} "
            f"(allowed from: {', '.join(sorted(sources))})."
        )
    execution.status = to
    for key, value in fields.items():
        setattr(execution, key, value)
    return execution


def execution_start(
    execution: JobExecution, *, instance_id: str = "", hostname: str = "", celery_task_id: str = ""
) -> JobExecution:
    now = timezone.now()
    fields = {"started_at": now}
    for key, value in (("instance_id", instance_id), ("hostname", hostname), ("celery_task_id", celery_task_id)):
        if value:
            fields[key] = value
    return _transition(execution, S.RUNNING, **fields)


def execution_finish(execution: JobExecution, *, result=None) -> JobExecution:
    now = timezone.now()
    _transition(
        execution,
        S.SUCCESS,
        finished_at=now,
        duration_ms=_duration_ms(execution, now),
        result=_json_safe(result),
    )
    _lease_release(execution)
    return execution


def execution_fail(execution: JobExecution, *, error: str, traceback: str = "", only_if_pending=False) -> JobExecution:
    """Record a failed run; only_if_pending refuses to touch a run someone has already started."""
    now = timezone.now()
    _transition(
        execution,
        S.FAILED,
        sources={S.PENDING} if only_if_pending else None,
        finished_at=now,
        duration_ms=_duration_ms(execution, now),
        error_message=_text_safe(str(error))[:10000],
        traceback=_text_safe(traceback or ""),
    )
    _lease_release(execution)
    return execution


def _lease_release(execution: JobExecution) -> None:
    """Free the run's max_instances slot. This need not share a transaction with the status
    change: a lease left behind by a crash in between is swept by leases_reap."""
    ScheduledJobLock.objects.filter(execution_id=execution.pk).delete()


def execution_skip(execution: JobExecution, *, reason: str) -> JobExecution:
    """Record a run that did not start because the job's max_instances slots were all taken."""
    return _transition(execution, S.SKIPPED, finished_at=timezone.now(), error_message=reason)


def execution_miss(execution: JobExecution, *, reason: str) -> JobExecution:
    """Record a run that did not start because it was later than the job's misfire grace time."""
    return _transition(execution, S.MISSED, finished_at=timezone.now(), error_message=reason)


def executions_cleanup(
    *, older_than_days: int | None = None, batch_size: int = CLEANUP_BATCH_SIZE, dry_run: bool = False
) -> int:
    """Apply the retention policy; return how many executions were (or, dry run, would be) deleted.

    Two rules, in one run: finished executions created more than `older_than_days` ago
    (default SCHEDULER_HISTORY_RETENTION_DAYS) go, and so do the finished executions of a job
    with a history_limit beyond its newest `history_limit`. Deletes go in short batches so the
    table is never locked for long. Pending and running executions are never touched, however old.
    """
    days = settings.SCHEDULER_HISTORY_RETENTION_DAYS if older_than_days is None else int(older_than_days)
    if days < 0:
        raise ValueError("older_than_days must be 0 or more")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    cutoff = timezone.now() - timedelta(days=days)
    old = JobExecution.objects.finished().filter(created_at__lt=cutoff)
    if dry_run:
        # Old rows are each job's oldest, so deleting them first never changes which rows are a
        # job's newest N: the rows the cap removes afterwards are exactly the recent ones past it.
        return old.count() + JobExecution.objects.beyond_history_limit().filter(created_at__gte=cutoff).count()
    deleted = _delete_in_batches(old, batch_size)
    deleted += executions_cleanup_over_limit(batch_size=batch_size)
    logger.info(
        "History cleanup deleted %d executions (older than %d days or beyond a job's history limit)",
        deleted,
        days,
    )
    return deleted


def executions_cleanup_over_limit(*, batch_size: int = CLEANUP_BATCH_SIZE, dry_run: bool = False) -> int:
    """Delete the finished executions beyond each job's history_limit, newest N kept, in batches."""
    if dry_run:
        return JobExecution.objects.beyond_history_limit().count()
    return _delete_in_batches(JobExecution.objects.beyond_history_limit(), batch_size)


def _delete_in_batches(queryset, batch_size: int) -> int:
    deleted = 0
    while True:
        batch = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not batch:
            return deleted
        with transaction.atomic():
            # finished() again: a row picked for the batch is re-checked at delete time.
            _, per_model = JobExecution.objects.finished().filter(pk__in=batch).delete()
        deleted += per_model.get(JobExecution._meta.label, 0)
        if len(batch) < batch_size:
            return deleted


def _duration_ms(execution: JobExecution, now) -> int | None:
    if execution.started_at is None:
        return None
    return max(0, int((now - execution.started_at).total_seconds() * 1000))


def _json_safe(value):
    """Results are stored as JSON; anything JSON cannot hold is kept as its repr.

    That includes NaN and infinities (not JSON: SQLite's JSON check and PostgreSQL's jsonb refuse
    them) and text no database can hold (NUL characters, lone surrogates such as undecodable file
    names), which would otherwise make the run unrecordable.
    """
    try:
        json.dumps(value, cls=DjangoJSONEncoder, allow_nan=False)
        if not _has_unstorable_text(value):
            return value
    except (TypeError, ValueError):
        pass
    return {"repr": _text_safe(repr(value))}


def _has_unstorable_text(value) -> bool:
    if isinstance(value, str):
        return value != _text_safe(value)
    if isinstance(value, dict):
        return any(_has_unstorable_text(k) or _has_unstorable_text(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_unstorable_text(item) for item in value)
    return False


def _text_safe(text: str) -> str:
    """Text every database can store: NUL characters and lone surrogates kept visible as escapes."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(frozen=True)
class RunStarted:
    execution_id: int
    started_at: datetime
    instance_id: str
    hostname: str


@dataclass(frozen=True)
class RunEnded:
    execution_id: int
    status: str  # success or failed
    started_at: datetime | None  # None: refused before it started (pending -> failed)
    finished_at: datetime
    result: object = None
    error: str = ""
    traceback: str = ""


def executions_record(started: list[RunStarted], ended: list[RunEnded]) -> None:
    """Apply many lifecycle transitions in one short transaction (the engine's inline runs).

    Each row moves pending -> running -> success | failed through a conditional update, exactly
    as execution_start/finish/fail would; a run that started and ended within the same batch
    makes both moves in one update (its running state was never visible outside this
    transaction). A row another process or the lease reaper already moved on is left alone.
    """
    rows = _lifecycle_rows(started, ended)
    ended_ids = [e.execution_id for e in ended]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            _lifecycle_write_postgresql(rows, ended_ids)
        else:
            _lifecycle_write(rows, ended_ids)


def _lifecycle_rows(started: list[RunStarted], ended: list[RunEnded]) -> list[dict]:
    """One conditional update per execution: where it must be now (source) and what it becomes."""
    rows = {
        s.execution_id: {
            "id": s.execution_id, "source": S.PENDING, "status": S.RUNNING, "started_at": s.started_at,
            "instance_id": s.instance_id, "hostname": s.hostname, "finished_at": None, "duration_ms": None,
            "result": None, "error_message": None, "traceback": None,
        }
        for s in started
    }
    for e in ended:
        row = rows.get(e.execution_id) or {
            "id": e.execution_id, "source": S.RUNNING if e.started_at else S.PENDING, "started_at": None,
            "instance_id": None, "hostname": None, "result": None, "error_message": None, "traceback": None,
        }
        row.update(status=e.status, finished_at=e.finished_at, duration_ms=_ended_duration_ms(e))
        if e.status == S.SUCCESS:
            row["result"] = _json_safe(e.result)
        else:
            row["error_message"] = _text_safe(str(e.error))[:10000]
            row["traceback"] = _text_safe(e.traceback or "")
        rows[e.execution_id] = row
    return list(rows.values())


# Columns a lifecycle row sets; a None keeps what the row holds, except for the outcome columns.
_KEPT_UNLESS_GIVEN = ("started_at", "instance_id", "hostname", "error_message", "traceback")
_SET = ("status", "finished_at", "duration_ms", "result")


def _lifecycle_write_postgresql(rows: list[dict], ended_ids: list[int]) -> None:
    """All rows in one UPDATE and the ended runs' leases in the same statement, the rows as one JSON
    document (services.claims._due_runs_insert_postgresql says why).

    An ended run's lease goes only once its row is finished: a row whose end could not apply
    (its start was never recorded) keeps the lease, which expires and fails it with the reason.
    """
    table = connection.ops.quote_name(JobExecution._meta.db_table)
    lock_table = connection.ops.quote_name(ScheduledJobLock._meta.db_table)
    assignments = ", ".join(
        [f"{c} = COALESCE(batch.{c}, e.{c})" for c in _KEPT_UNLESS_GIVEN]
        # A result of None arrives as SQL NULL (jsonb_to_recordset turns a JSON null into one),
        # which is how Django's JSONField(null=True) stores None.
        + [f"{c} = batch.{c}" for c in _SET]
    )
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
            )
            DELETE FROM {lock_table} AS lease WHERE lease.execution_id = ANY(%(ended)s::bigint[]) AND (
                lease.execution_id IN (SELECT id FROM updated WHERE status <> ALL(%(unfinished)s))
                -- the rest of the statement sees the rows as they were before the UPDATE
                OR EXISTS (SELECT 1 FROM {table} AS done WHERE done.id = lease.execution_id
                           AND done.status <> ALL(%(unfinished)s))
            )
            """,
            {
                "rows": json.dumps([_with_exact_times(row) for row in rows], cls=DjangoJSONEncoder),
                "ended": "{" + ",".join(map(str, ended_ids)) + "}",
                "unfinished": [S.PENDING, S.RUNNING],
            },
        )


def _with_exact_times(row: dict) -> dict:
    # DjangoJSONEncoder would cut the microseconds; the row's own times keep them.
    for column in ("started_at", "finished_at"):
        if row[column] is not None:
            row[column] = row[column].isoformat()
    return row


def _lifecycle_write(rows: list[dict], ended_ids: list[int]) -> None:
    table = connection.ops.quote_name(JobExecution._meta.db_table)
    field = JobExecution._meta.get_field
    assignments = ", ".join([f"{c} = COALESCE(%s, {c})" for c in _KEPT_UNLESS_GIVEN] + [f"{c} = %s" for c in _SET])
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET {assignments} WHERE id = %s AND status = %s",
            [
                [field(c).get_db_prep_save(row[c], connection) for c in (*_KEPT_UNLESS_GIVEN, *_SET)]
                + [row["id"], row["source"]]
                for row in rows
            ],
        )
    if ended_ids:
        ScheduledJobLock.objects.filter(execution_id__in=ended_ids).exclude(
            execution__status__in=(S.PENDING, S.RUNNING)
        ).delete()


def _ended_duration_ms(ended: RunEnded) -> int | None:
    if ended.started_at is None:
        return None
    return max(0, int((ended.finished_at - ended.started_at).total_seconds() * 1000))

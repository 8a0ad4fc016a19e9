"""Services for executions: the lifecycle pending -> running -> an outcome, and what follows a failure."""

import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from scheduler import clock
from scheduler.backends import backend
from scheduler.enums import FAILURE_STATUSES, ExecutionStatus
from scheduler.models import JobExecution, JobLease
from scheduler.services.failures import failures_follow_up, slots_freed
from scheduler.services.run_logs import run_logs_save

logger = logging.getLogger("scheduler.executions")
S = ExecutionStatus
# Which states each state may be entered from. pending -> failed covers runs that could not be
# started at all (inactive task function, broker down, lease expired before the worker began).
ALLOWED_SOURCES = {
    S.RUNNING: {S.PENDING},
    S.SUCCESS: {S.RUNNING},
    S.FAILED: {S.PENDING, S.RUNNING},
    S.TIMED_OUT: {S.RUNNING},
    S.CANCELLED: {S.PENDING, S.WAITING, S.RUNNING},
}
# Skipped and missed runs never start: a claim records them so when it inserts or takes them.
# A claim moves waiting runs to pending when their job has a free slot.


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
    now = clock.now()
    fields = {"started_at": now}
    for key, value in (("instance_id", instance_id), ("hostname", hostname), ("celery_task_id", celery_task_id)):
        if value:
            fields[key] = value
    return _transition(execution, S.RUNNING, **fields)


def execution_finish(execution: JobExecution, *, result=None, logs=None) -> JobExecution:
    now = clock.now()
    _logs_save(execution, logs)
    _transition(
        execution,
        S.SUCCESS,
        finished_at=now,
        duration_ms=_duration_ms(execution, now),
        result=_json_safe(result),
    )
    _lease_release(execution)
    _ended([execution.pk], failed=[])
    return execution


def execution_fail(
    execution: JobExecution, *, error: str, traceback: str = "", only_if_pending=False, logs=None
) -> JobExecution:
    """Record a failed run; only_if_pending refuses to touch a run someone has already started."""
    return execution_end(
        execution,
        status=S.FAILED,
        error=error,
        traceback=traceback,
        sources={S.PENDING} if only_if_pending else None,
        logs=logs,
    )


def execution_end(
    execution: JobExecution,
    *,
    status: str,
    result=None,
    error: str = "",
    traceback: str = "",
    sources=None,
    logs=None,
) -> JobExecution:
    """Record a run's outcome other than success (failed, timed out, cancelled), then what follows
    it: a retry or a pause for a failure, a waiting run started in the slot it frees."""
    now = clock.now()
    _logs_save(execution, logs)
    _transition(
        execution,
        status,
        sources=sources,
        finished_at=now,
        duration_ms=_duration_ms(execution, now),
        result=_json_safe(result),
        error_message=_text_safe(str(error))[:10000],
        traceback=_text_safe(traceback or ""),
    )
    _lease_release(execution)
    _ended([execution.pk], failed=[execution.pk] if status in FAILURE_STATUSES else [])
    return execution


def execution_lost(execution: JobExecution, *, reason: str, status: str = S.FAILED) -> JobExecution | None:
    """End a run nobody will record the end of (its process or worker died, its lease expired, it
    was killed at its hard time limit: status timed_out): cancelled if someone had asked for that,
    otherwise `status` with the reason. None if it had already ended."""
    current = JobExecution.objects.filter(pk=execution.pk).values_list("cancel_requested_at", "cancel_reason").first()
    try:
        if current is not None and current[0] is not None:
            return execution_end(execution, status=S.CANCELLED, error=f"{current[1] or 'cancelled'} ({reason})")
        return execution_end(execution, status=status, error=reason)
    except InvalidTransition:
        return None


def _ended(ended_ids: list[int], *, failed: list[int]) -> None:
    """What follows runs' ends, each in its own transaction after the outcome is written (a retry
    that cannot be scheduled never loses the outcome, and no lock is held across both)."""
    for follow_up, ids, atomic in ((failures_follow_up, failed, True), (slots_freed, ended_ids, False)):
        if not ids:
            continue
        try:
            with transaction.atomic() if atomic else contextlib.nullcontext():
                follow_up(ids)
        except Exception:  # the outcomes stand; a retry or a wake-up missed is logged, not raised
            logger.exception("Could not apply %s to executions %s", follow_up.__name__, ids[:20])


def _lease_release(execution: JobExecution) -> None:
    """Free the run's max_instances slot. This need not share a transaction with the status
    change: a lease left behind by a crash in between is swept by services.leases.leases_reap."""
    JobLease.objects.of_executions([execution.pk]).delete()


def _logs_save(execution: JobExecution, logs) -> None:
    """The log records the run's task function emitted (services.run_logs), if it logged any.

    Written before the end (one statement each, not a transaction): whoever sees the run ended
    finds its logs. A run that moved on without this process keeps the logs of what it did here.
    """
    if logs:
        run_logs_save({execution.pk: logs})


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
    status: str  # success, failed, timed_out or cancelled
    started_at: datetime | None  # None: ended before it started (pending -> failed | cancelled)
    finished_at: datetime
    result: object = None
    error: str = ""
    traceback: str = ""
    logs: tuple[list[dict], int] | None = None  # what the task function logged (services.run_logs)


def executions_record(started: list[RunStarted], ended: list[RunEnded]) -> set[int]:
    """Apply many lifecycle transitions in one short transaction (the engine's inline runs).

    Each row moves pending -> running -> success | failed through a conditional update, exactly
    as execution_start/finish/fail would; a run that started and ended within the same batch
    makes both moves in one update (its running state was never visible outside this
    transaction). A row another process or the lease reaper already moved on is left alone.
    Returns the ids of the executions whose rows moved.
    """
    rows = _lifecycle_rows(started, ended)
    ended_ids = [e.execution_id for e in ended]
    logs = {e.execution_id: e.logs for e in ended if e.logs}
    db = backend()
    # A backend's write of one statement is a transaction by itself: no BEGIN and COMMIT for it.
    with transaction.atomic() if logs or not db.lifecycle_write_atomic else contextlib.nullcontext():
        moved = db.lifecycle_write(rows, ended_ids)
        # The runs' logs go with their ends, in the same transaction: one insert for the batch.
        run_logs_save({pk: records for pk, records in logs.items() if pk in moved})
    _ended(
        [pk for pk in ended_ids if pk in moved],
        failed=[e.execution_id for e in ended if e.status in FAILURE_STATUSES and e.execution_id in moved],
    )
    return moved


def _lifecycle_rows(started: list[RunStarted], ended: list[RunEnded]) -> list[dict]:
    """One conditional update per execution: where it must be now (source) and what it becomes."""
    rows = {
        s.execution_id: {
            "id": s.execution_id,
            "source": S.PENDING,
            "status": S.RUNNING,
            "started_at": s.started_at,
            "instance_id": s.instance_id,
            "hostname": s.hostname,
            "finished_at": None,
            "duration_ms": None,
            "result": None,
            "error_message": None,
            "traceback": None,
        }
        for s in started
    }
    for e in ended:
        row = rows.get(e.execution_id) or {
            "id": e.execution_id,
            "source": S.RUNNING if e.started_at else S.PENDING,
            "started_at": None,
            "instance_id": None,
            "hostname": None,
            "result": None,
            "error_message": None,
            "traceback": None,
        }
        row.update(status=e.status, finished_at=e.finished_at, duration_ms=_ended_duration_ms(e))
        row["result"] = _json_safe(e.result)
        if e.status != S.SUCCESS:
            row["error_message"] = _text_safe(str(e.error))[:10000]
            row["traceback"] = _text_safe(e.traceback or "")
        rows[e.execution_id] = row
    return list(rows.values())


def _ended_duration_ms(ended: RunEnded) -> int | None:
    if ended.started_at is None:
        return None
    return max(0, int((ended.finished_at - ended.started_at).total_seconds() * 1000))

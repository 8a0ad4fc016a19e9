"""The jobs' audit trail: who changed a job, when, through what (admin, API, dashboard, command line,
code sync, the scheduler) and which fields, before and after.

Entry points say through what with `change_source` (the web middleware does it for every request,
the commands for themselves); the job services and the job actions table open a `job_change`
around each write, so every service, and every action the table gains, is recorded without code of
its own. Nested scopes for the same job make one entry, named by the outermost (the table's action).
"""

import contextlib
import contextvars
import getpass
import socket
from dataclasses import dataclass, field

from django.db import transaction

from scheduler import clock
from scheduler.enums import ChangeSource
from scheduler.models import JobAuditEntry, ScheduledJob


@dataclass(frozen=True)
class _Source:
    source: str
    actor: str


_source: contextvars.ContextVar[_Source | None] = contextvars.ContextVar("scheduler_change_source", default=None)


@dataclass
class JobChange:
    """The change being made inside a job_change block; services add what the fields do not show."""

    action: str
    job_id: int | None
    user: object
    details: dict = field(default_factory=dict)


_scope: contextvars.ContextVar[JobChange | None] = contextvars.ContextVar("scheduler_job_change", default=None)

# Bookkeeping the services keep themselves, not what an operator changed.
NOT_AUDITED = frozenset({"id", "created_at", "updated_at", "created_by", "updated_by", "last_run_time"})


def audited_fields() -> list[str]:
    """Every column of a job but the bookkeeping: a field added to the model is audited at once."""
    return [f.attname for f in ScheduledJob._meta.concrete_fields if f.name not in NOT_AUDITED]


@contextlib.contextmanager
def change_source(source: str, *, actor: str = ""):
    """Declare through what the job changes made inside the block come (ChangeSource), and who
    made them when no user is passed to the services (a command line's OS user, say)."""
    if source not in ChangeSource.values:
        raise ValueError(f"Unknown change source {source!r}: use one of {', '.join(ChangeSource.values)}.")
    token = _source.set(_Source(source, actor))
    try:
        yield
    finally:
        _source.reset(token)


def command_line_actor() -> str:
    """Who runs a management command, as the audit trail names them: user@host."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def current_source() -> tuple[str, str]:
    declared = _source.get()
    return (declared.source, declared.actor) if declared else (ChangeSource.CODE, "")


@contextlib.contextmanager
def job_change(action: str, job_id: int | None = None, *, user=None, source: str = "", actor: str = "", **details):
    """Run the block in a transaction and record one audit entry for the job it changes.

    job_id None: a job the block creates (it sets `change.job_id`). The job's row is locked and
    read before and after; the entry keeps the fields that differ. An edit that changes nothing
    records nothing. Inside another job_change for the same job, the outer one records.
    """
    outer = _scope.get()
    if outer is not None and (outer.job_id is None or job_id is None or outer.job_id == job_id):
        if outer.job_id is None:
            outer.job_id = job_id
        outer.details.update({k: v for k, v in details.items() if k not in outer.details})
        yield outer
        return
    change = JobChange(action, job_id, user, {k: v for k, v in details.items() if v not in ("", None)})
    with transaction.atomic():
        before = _snapshot(job_id) if job_id is not None else None
        token = _scope.set(change)
        try:
            yield change
        finally:
            _scope.reset(token)
        if change.job_id is None:
            return
        after = _snapshot(change.job_id) or {}
        changes = _differences(before, after)
        if not changes and action == "edit":
            return
        declared_source, declared_actor = current_source()
        JobAuditEntry.objects.create(
            job_id=change.job_id,
            action=action,
            at=clock.now(),
            user=_user_or_none(user),
            actor=_actor(user, actor or declared_actor),
            source=source or declared_source,
            changes=changes,
            details=change.details,
        )


def _snapshot(job_id: int) -> dict | None:
    return ScheduledJob.objects.select_for_update().filter(pk=job_id).values(*audited_fields()).first()


def _differences(before: dict | None, after: dict) -> dict:
    if before is None:  # created: what it was created with
        return {name: {"before": None, "after": value} for name, value in after.items() if value not in (None, "")}
    return {
        name: {"before": before.get(name), "after": value} for name, value in after.items() if before.get(name) != value
    }


def _user_or_none(user):
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def _actor(user, fallback: str) -> str:
    if _user_or_none(user) is not None:
        return user.get_username()
    return fallback


def audit_changes_words(entry: JobAuditEntry, *, limit: int = 200) -> str:
    """What an entry changed, for a person: 'priority 0 -> 5; reason: maintenance'."""
    parts = []
    for name, change in entry.changes.items():
        label = name.removesuffix("_id")
        if change.get("before") is None and entry.action == "create":
            parts.append(f"{label} {_short(change.get('after'))}")
        else:
            parts.append(f"{label} {_short(change.get('before'))} -> {_short(change.get('after'))}")
    for key, value in entry.details.items():
        parts.append(f"{key.replace('_', ' ')}: {_short(value)}")
    text = "; ".join(parts) or "-"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(value) -> str:
    text = "-" if value in (None, "") else str(value)
    return text if len(text) <= 60 else text[:57] + "..."

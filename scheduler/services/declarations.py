"""Services for jobs declared in code (@task_function(schedules=[...])): sync them into ScheduledJob.

The sync creates missing jobs, updates the declared fields of changed ones, takes over a job made
by hand whose name a declaration now uses, and disables (or, with prune, deletes) the jobs whose
declaration left the code. It never touches runtime state: pause and its reason, next and last
run, history; a declaration's `enabled` is only the state a new (or re-declared) job starts in.
One process syncs at a time (the backend's code sync lock), so processes starting together
neither duplicate a job nor undo each other's work, and a dry run is the real sync rolled back.
"""

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import Q

from scheduler import clock, registry
from scheduler.backends import backend
from scheduler.enums import ChangeSource
from scheduler.models import JobType, ScheduledJob, TaskFunction
from scheduler.services.audit import change_source
from scheduler.services.cron import cron_validate
from scheduler.services.jobs import CODE_OWNED_FIELDS, job_create, job_delete, job_update
from scheduler.services.task_functions import task_functions_sync

# Past and conditional forms of each kind of change, for the report.
CHANGE_WORDS = {
    "created": ("created", "would create"),
    "updated": ("updated", "would update"),
    "adopted": ("taken over", "would take over"),
    "redeclared": ("re-declared", "would re-declare"),
    "disabled": ("disabled", "would disable"),
    "deleted": ("deleted", "would delete"),
    "invalid": ("invalid, left as it is", "invalid, would be left as it is"),
}


@dataclass(frozen=True)
class JobSyncChange:
    kind: str  # a key of CHANGE_WORDS
    name: str
    detail: str = ""


@dataclass
class JobSyncReport:
    """What a sync of declared jobs changed (or, in a dry run, would change)."""

    dry_run: bool = False
    changes: list[JobSyncChange] = field(default_factory=list)
    unchanged: int = 0

    def add(self, kind: str, name: str, detail: str = "") -> None:
        self.changes.append(JobSyncChange(kind, name, detail))

    def count(self, kind: str) -> int:
        return sum(1 for change in self.changes if change.kind == kind)

    @property
    def invalid(self) -> list[JobSyncChange]:
        return [change for change in self.changes if change.kind == "invalid"]

    @property
    def changed(self) -> bool:
        return any(change.kind != "invalid" for change in self.changes)

    def lines(self) -> list[str]:
        """One line per job changed or refused, then the summary."""
        lines = []
        for change in self.changes:
            verb = CHANGE_WORDS[change.kind][self.dry_run]
            lines.append(f"{verb}: {change.name}" + (f" ({change.detail})" if change.detail else ""))
        return [*lines, self.summary()]

    def summary(self) -> str:
        counts = ", ".join(
            f"{self.count(kind)} {CHANGE_WORDS[kind][0].split(',')[0]}" for kind in CHANGE_WORDS if kind != "invalid"
        )
        head = "Dry run, nothing written: declared jobs would be" if self.dry_run else "Declared jobs in sync:"
        invalid = f", {len(self.invalid)} invalid" if self.invalid else ""
        return f"{head} {counts}, {self.unchanged} unchanged{invalid}."

    def log(self, logger: logging.Logger, **log_kwargs) -> None:
        """One INFO line when something changed, a WARNING per invalid declaration."""
        for change in self.invalid:
            logger.warning("Declared job %r is invalid, left as it is: %s", change.name, change.detail, **log_kwargs)
        if self.changed or self.invalid:
            logger.info("%s", self.summary(), **log_kwargs)


def jobs_sync(*, dry_run: bool = False, prune: bool = False) -> JobSyncReport:
    """Bring the jobs declared in code into the database (the default one, as every job service)."""
    registry.load()
    report = JobSyncReport(dry_run=dry_run)
    declarations = registry.declarations()
    # The audit trail says these changes came from the code (whatever started the sync).
    with change_source(ChangeSource.CODE_SYNC), transaction.atomic():
        backend().code_sync_lock(DEFAULT_DB_ALIAS)
        task_functions_sync()  # in the same transaction: the jobs see exactly the code's functions
        functions = {tf.name: tf.pk for tf in TaskFunction.objects.active()}
        existing = {
            job.name: job
            for job in ScheduledJob.objects.active()
            .filter(Q(name__in=[d.name for d in declarations]) | ~Q(managed_by=""))
            .select_for_update()
        }
        for declaration in declarations:
            _declaration_apply(declaration, existing.pop(declaration.name, None), functions, report)
        for job in existing.values():  # code-managed jobs no declaration names any more
            _declaration_gone(job, prune, report)
        if dry_run:
            transaction.set_rollback(True)
    return report


def _declared_values(declaration: registry.JobDeclaration, function_id: int) -> dict:
    timezone = declaration.timezone or settings.TIME_ZONE
    expression = declaration.cron_expression
    if expression is not None:
        try:  # compare in the normalised form jobs store; an invalid one is refused by the job services
            expression = cron_validate(expression, timezone)
        except ValidationError:
            pass
    return {
        "name": declaration.name,
        "description": declaration.description,
        "task_function_id": function_id,
        "job_type_id": JobType.CRON if declaration.is_cron else JobType.INTERVAL,
        **{name: getattr(declaration, name) for name in ScheduledJob.INTERVAL_FIELDS},
        "cron_expression": expression,
        "timezone": timezone,
        "args": declaration.args,
        "kwargs": declaration.kwargs,
        "priority": declaration.priority,
        "max_instances": declaration.max_instances,
        "misfire_grace_time": declaration.misfire_grace_time,
        "coalesce": declaration.coalesce,
    }


def _declaration_apply(declaration, job: ScheduledJob | None, functions: dict, report: JobSyncReport) -> None:
    function_id = functions.get(declaration.task_name)
    if function_id is None:  # registered, so just synced: only a broken registry gets here
        report.add("invalid", declaration.name, f"task function {declaration.task_name!r} has no active row")
        return
    values = _declared_values(declaration, function_id)
    try:
        if job is None:
            job_create(from_code=True, is_enabled=declaration.enabled, managed_by=declaration.declared_in, **values)
            report.add("created", declaration.name, f"defined in code ({declaration.declared_in})")
            return
        changed = [name for name in CODE_OWNED_FIELDS if getattr(job, name) != values[name]]
        fields = {name: values[name] for name in changed}
        if job.managed_by != declaration.declared_in:
            fields["managed_by"] = declaration.declared_in
        if not job.managed_by:
            kind, detail = "adopted", f"made by hand before, now defined in code ({declaration.declared_in})"
        elif job.declaration_removed_at is not None:
            # Disabled by the sync that found the declaration gone: back as a newly declared job starts.
            fields.update(declaration_removed_at=None, is_enabled=declaration.enabled)
            kind, detail = "redeclared", f"defined in code ({declaration.declared_in}) again"
        elif fields:
            kind, detail = "updated", ""
        else:
            report.unchanged += 1
            return
        job_update(job, from_code=True, **fields)
        if changed:
            detail = "; ".join(filter(None, [detail, f"changed: {', '.join(_words(changed))}"]))
        elif "managed_by" in fields and kind == "updated":
            detail = f"now defined in code ({declaration.declared_in})"
        report.add(kind, declaration.name, detail)
    except ValidationError as exc:
        report.add("invalid", declaration.name, f"{declaration.declared_in}: {_error_words(exc)}")


def _declaration_gone(job: ScheduledJob, prune: bool, report: JobSyncReport) -> None:
    if prune:
        job_delete(job, from_code=True)
        report.add("deleted", job.name, f"its declaration in {job.managed_by} is gone; its history stays")
    elif job.declaration_removed_at is None:
        was_enabled = job.is_enabled
        job_update(job, from_code=True, is_enabled=False, declaration_removed_at=clock.now())
        state = "" if was_enabled else "; it was disabled already"
        report.add("disabled", job.name, f"its declaration in {job.managed_by} is gone{state}")


def _words(fields: list[str]) -> list[str]:
    return [name.removesuffix("_id") for name in fields]


def _error_words(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in exc.message_dict.items())
    return " ".join(exc.messages)

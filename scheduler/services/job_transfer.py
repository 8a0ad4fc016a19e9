"""Services for moving jobs between databases: export every job as JSON, import such a file back.

An import matches jobs by name, checks every row through the job services before it writes any,
then writes them all in one transaction: all or nothing. A dry run is that same import rolled
back, so its report is exactly what the import would do.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction

from scheduler import clock
from scheduler.models import Calendar, JobType, ScheduledJob, TaskFunction
from scheduler.services.cron import instant_parse
from scheduler.services.jobs import job_check, job_create, job_pause, job_resume, job_update

EXPORT_FORMAT = "django-job-scheduler/jobs"
EXPORT_VERSION = 1
JOB_TYPES = {JobType.INTERVAL: "interval", JobType.CRON: "cron", JobType.DATE: "date"}
# Moments travel as ISO 8601 with an offset; the calendar of days to skip by its name.
MOMENT_KEYS = ("runAt", "startAt", "endAt")

# A row's keys (camelCase, as the API names them) and the job services' field for each; the task
# function and the job type travel by name, which means the same thing in every database.
ROW_FIELDS = {
    "name": "name",
    "description": "description",
    "taskFunction": "task_function",
    "jobType": "job_type",
    "intervalDays": "interval_days",
    "intervalHours": "interval_hours",
    "intervalMinutes": "interval_minutes",
    "intervalSeconds": "interval_seconds",
    "cronExpression": "cron_expression",
    "timezone": "timezone",
    "args": "args",
    "kwargs": "kwargs",
    "priority": "priority",
    "maxInstances": "max_instances",
    "misfireGraceTime": "misfire_grace_time",
    "coalesce": "coalesce",
    "historyLimit": "history_limit",
    "overlapPolicy": "overlap_policy",
    "maxRetries": "max_retries",
    "retryBackoff": "retry_backoff",
    "timeout": "timeout",
    "pauseAfterFailures": "pause_after_failures",
    "runAt": "run_at",
    "startAt": "start_at",
    "endAt": "end_at",
    "jitterSeconds": "jitter_seconds",
    "maxRuns": "max_runs",
    "excludeCalendar": "exclude_calendar",
    "isEnabled": "is_enabled",
}
STATE_KEYS = ("isPaused", "pauseReason")
# Written for the reader; an import leaves it: only the code's declarations (sync_jobs) decide it.
INFORMATION_KEYS = ("managedBy",)
REQUIRED_KEYS = ("name", "taskFunction", "jobType")
ROW_KEY_OF_FIELD = {service: key for key, service in ROW_FIELDS.items()} | {
    "task_function_id": "taskFunction",
    "job_type_id": "jobType",
    "is_paused": "isPaused",
    "pause_reason": "pauseReason",
}


class ImportRefused(Exception):
    """The file is not an export, or some of its rows are not valid jobs; nothing was written."""

    def __init__(self, message: str, report: "JobImportReport | None" = None):
        super().__init__(message)
        self.report = report


# --- export ------------------------------------------------------------------------------------------


def jobs_export(now: datetime | None = None) -> dict:
    """Every job not deleted, as a JSON-ready document that jobs_import reads back."""
    jobs = ScheduledJob.objects.active().select_related("task_function", "exclude_calendar").order_by("name", "pk")
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exportedAt": (now or clock.now()).isoformat(),
        "jobs": [job_as_row(job) for job in jobs],
    }


def job_as_row(job: ScheduledJob) -> dict:
    row = {}
    for key, service_field in ROW_FIELDS.items():
        if service_field == "task_function":
            row[key] = job.task_function.name
        elif service_field == "job_type":
            row[key] = JOB_TYPES[job.job_type_id]
        elif service_field == "exclude_calendar":
            row[key] = job.exclude_calendar.name if job.exclude_calendar_id else None
        elif key in MOMENT_KEYS:
            moment = getattr(job, service_field)
            row[key] = moment.isoformat() if moment else None
        else:
            row[key] = getattr(job, service_field)
    row["isPaused"] = job.is_paused
    row["pauseReason"] = job.pause_reason
    row["managedBy"] = job.managed_by or None
    return row


# --- import ------------------------------------------------------------------------------------------


@dataclass
class RowOutcome:
    number: int  # 1-based, as a person counts the rows of the file
    name: str
    action: str = ""  # create | change | unchanged
    changed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def line(self, dry_run: bool) -> str:
        label = f"row {self.number} ({self.name!r})" if self.name else f"row {self.number}"
        if self.errors:
            return f"{label}: invalid: " + "; ".join(self.errors)
        verb = {
            "create": "would create" if dry_run else "created",
            "change": "would change" if dry_run else "changed",
            "unchanged": "unchanged",
        }[self.action]
        text = f"{label}: {verb}" + (f": {', '.join(self.changed)}" if self.changed else "")
        return text + "".join(f" ({note})" for note in self.notes)


@dataclass
class JobImportReport:
    dry_run: bool
    rows: list[RowOutcome] = field(default_factory=list)

    @property
    def invalid(self) -> list[RowOutcome]:
        return [row for row in self.rows if row.errors]

    def count(self, action: str) -> int:
        return sum(1 for row in self.rows if row.action == action and not row.errors)

    def lines(self) -> list[str]:
        return [row.line(self.dry_run) for row in self.rows] + [self.summary()]

    def summary(self) -> str:
        if self.invalid:
            return (
                f"{len(self.invalid)} of {len(self.rows)} rows are invalid: nothing was imported "
                f"(an import writes every row or none)."
            )
        create, change, unchanged = self.count("create"), self.count("change"), self.count("unchanged")
        if self.dry_run:
            return f"Dry run, nothing written: {create} to create, {change} to change, {unchanged} unchanged."
        return f"Imported {len(self.rows)} jobs: {create} created, {change} changed, {unchanged} unchanged."


def jobs_import(document, *, dry_run: bool = False, user=None) -> JobImportReport:
    """Create or change the jobs of an export (matched by name); raise ImportRefused, writing
    nothing, when the document or any row is not valid."""
    rows = _document_rows(document)
    report = JobImportReport(dry_run=dry_run)
    functions = {tf.name: tf.pk for tf in TaskFunction.objects.all()}
    planned = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        name = row.get("name") if isinstance(row, dict) else None
        outcome = RowOutcome(number=number, name=name if isinstance(name, str) else "")
        report.rows.append(outcome)
        fields, state = _row_fields(row, functions, outcome)
        if outcome.errors:
            continue
        name = fields["name"].strip()
        if name in seen:
            outcome.errors.append(f"name: row {seen[name]} already has the job {name!r}; each name once")
            continue
        seen[name] = number
        existing = ScheduledJob.objects.active().filter(name=name).first()
        try:
            job_check(existing, **fields)
        except ValidationError as exc:
            outcome.errors.extend(_error_lines(exc))
            continue
        if row.get("managedBy") and (existing is None or existing.managed_by != row["managedBy"]):
            outcome.notes.append(
                f"was defined in code ({row['managedBy']}) where it was exported: imported as an ordinary "
                f"job, which sync_jobs takes over if this code declares it"
            )
        planned.append((outcome, existing, fields, state))
    refused = bool(report.invalid)
    report.dry_run = dry_run or refused  # a refused import still says what its valid rows would do
    with transaction.atomic():
        for outcome, existing, fields, state in planned:
            _row_write(outcome, existing, fields, state, user)
        if report.dry_run:
            transaction.set_rollback(True)
    if refused:
        raise ImportRefused(report.summary(), report)
    return report


def _document_rows(document) -> list:
    if isinstance(document, dict) and isinstance(document.get("jobs"), list):
        if document.get("format", EXPORT_FORMAT) != EXPORT_FORMAT:
            raise ImportRefused(f"This is not a jobs export: its format is {document.get('format')!r}.")
        if document.get("version", EXPORT_VERSION) != EXPORT_VERSION:
            raise ImportRefused(
                f"This export is version {document.get('version')!r}; this scheduler reads version {EXPORT_VERSION}."
            )
        return document["jobs"]
    raise ImportRefused('A jobs export is a JSON object with a "jobs" list (what export_jobs writes).')


def _row_fields(row, functions: dict, outcome: RowOutcome) -> tuple[dict, dict]:
    """The job services' fields and the pause state of one row, or errors on the outcome."""
    if not isinstance(row, dict):
        outcome.errors.append("a row must be a JSON object of job fields")
        return {}, {}
    unknown = sorted(set(row) - set(ROW_FIELDS) - set(STATE_KEYS) - set(INFORMATION_KEYS))
    outcome.errors.extend(f"{key}: unknown field" for key in unknown)
    outcome.errors.extend(f"{key}: required" for key in REQUIRED_KEYS if row.get(key) in (None, ""))
    if outcome.errors:
        return {}, {}
    if not isinstance(row["name"], str):
        outcome.errors.append("name: must be a string")
    function_name = row["taskFunction"]
    if not isinstance(function_name, str) or function_name not in functions:
        outcome.errors.append(
            f"taskFunction: no task function is named {function_name!r} (registered functions: manage.py "
            f"sync_task_functions)"
        )
    job_type = (
        {name: pk for pk, name in JOB_TYPES.items()}.get(row["jobType"]) if isinstance(row["jobType"], str) else None
    )
    if job_type is None:
        outcome.errors.append(f"jobType: {row['jobType']!r} is not a job type: use 'interval', 'cron' or 'date'")
    for key in MOMENT_KEYS:
        if row.get(key) is not None:
            try:
                row = {**row, key: instant_parse(row[key])}
            except ValidationError as exc:
                outcome.errors.append(f"{key}: {exc.messages[0]}")
    calendar_name = row.get("excludeCalendar")
    if calendar_name is not None:
        calendar = Calendar.objects.filter(name=calendar_name).first() if isinstance(calendar_name, str) else None
        if calendar is None:
            outcome.errors.append(f"excludeCalendar: no calendar is named {calendar_name!r} (make it in the admin)")
        else:
            row = {**row, "excludeCalendar": calendar.pk}
    for key in ("isEnabled", "isPaused", "coalesce"):
        if key in row and not isinstance(row[key], bool):
            outcome.errors.append(f"{key}: must be true or false")
    if "pauseReason" in row and not isinstance(row["pauseReason"], (str, type(None))):
        outcome.errors.append("pauseReason: must be a string")
    if outcome.errors:
        return {}, {}
    fields = {ROW_FIELDS[key]: value for key, value in row.items() if key in ROW_FIELDS}
    fields["task_function_id"] = functions[fields.pop("task_function")]
    fields["job_type_id"] = job_type
    fields.pop("job_type")
    if "exclude_calendar" in fields:
        fields["exclude_calendar_id"] = fields.pop("exclude_calendar")
    if job_type in (JobType.CRON, JobType.DATE):  # a row may leave out the other types' fields; they are empty
        fields.update({name: None for name in ScheduledJob.INTERVAL_FIELDS if name not in fields})
    if job_type in (JobType.INTERVAL, JobType.DATE):
        fields.setdefault("cron_expression", None)
    if job_type != JobType.DATE:
        fields.setdefault("run_at", None)
    state = {"is_paused": row.get("isPaused", False), "pause_reason": row.get("pauseReason") or ""}
    return fields, state


def _row_write(outcome: RowOutcome, existing, fields: dict, state: dict, user) -> None:
    if existing is None:
        job = job_create(user=user, **fields)
        outcome.action = "create"
    else:
        before = job_as_row(
            ScheduledJob.objects.select_related("task_function", "exclude_calendar").get(pk=existing.pk)
        )
        job = job_update(existing, user=user, **fields)
    if state["is_paused"] and (not job.is_paused or job.pause_reason != state["pause_reason"]):
        job = job_pause(job, user=user, reason=state["pause_reason"])
    elif not state["is_paused"] and job.is_paused:
        job = job_resume(job, user=user)
    if existing is not None:
        after = job_as_row(ScheduledJob.objects.select_related("task_function", "exclude_calendar").get(pk=job.pk))
        outcome.changed = [key for key in after if key not in INFORMATION_KEYS and after[key] != before[key]]
        outcome.action = "change" if outcome.changed else "unchanged"


def _error_lines(exc: ValidationError) -> list[str]:
    if not hasattr(exc, "error_dict"):
        return [" ".join(exc.messages)]
    return [f"{ROW_KEY_OF_FIELD.get(name, name)}: {' '.join(messages)}" for name, messages in exc.message_dict.items()]

"""Services for teams leaving django-celery-beat: one job per PeriodicTask of its tables.

The tables are read with plain SELECTs, so django-celery-beat need not be installed (the product
never installs it). A PeriodicTask becomes a job only when its Celery task name is a registered
task function, and only through the job services' validation; everything else is reported and
skipped, and whatever of a task the job model cannot hold is listed, never dropped silently.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils.dateparse import parse_datetime

from scheduler import clock
from scheduler.models import JobType, ScheduledJob, TaskFunction
from scheduler.services.jobs import job_create
from scheduler.services.task_functions import task_functions_sync

# django-celery-beat's tables (its models' default names).
PERIODIC_TASK_TABLE = "django_celery_beat_periodictask"
CRONTAB_TABLE = "django_celery_beat_crontabschedule"
INTERVAL_TABLE = "django_celery_beat_intervalschedule"
CRONTAB_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
INTERVAL_PERIODS = ("days", "hours", "minutes", "seconds")


class CeleryBeatUnavailable(Exception):
    """No django-celery-beat tables where the import was asked to read them."""


@dataclass
class PeriodicTaskOutcome:
    name: str
    task: str
    created: bool = False
    schedule: str = ""
    skipped: str = ""  # why no job was made
    not_carried_over: list[str] = field(default_factory=list)

    def line(self, dry_run: bool) -> str:
        if self.skipped:
            return f"skipped: {self.name!r} ({self.skipped})"
        verb = "would create" if dry_run else "created"
        text = f"{verb}: {self.name!r} ({self.task}, {self.schedule})"
        return text + (f"; not carried over: {'; '.join(self.not_carried_over)}" if self.not_carried_over else "")


@dataclass
class CeleryBeatImportReport:
    dry_run: bool
    database: str
    tasks: list[PeriodicTaskOutcome] = field(default_factory=list)

    @property
    def created(self) -> list[PeriodicTaskOutcome]:
        return [t for t in self.tasks if not t.skipped]

    @property
    def skipped(self) -> list[PeriodicTaskOutcome]:
        return [t for t in self.tasks if t.skipped]

    def lines(self) -> list[str]:
        return [t.line(self.dry_run) for t in self.tasks] + [self.summary()]

    def summary(self) -> str:
        head = "Dry run, nothing written: would import" if self.dry_run else "Imported"
        return (
            f"{head} {len(self.created)} of {len(self.tasks)} django-celery-beat periodic tasks from database "
            f"{self.database!r}: {len(self.created)} {'to create' if self.dry_run else 'created'}, "
            f"{len(self.skipped)} skipped."
        )


def celery_beat_import(*, database: str = DEFAULT_DB_ALIAS, dry_run: bool = False, user=None):
    """Create one job per PeriodicTask read from `database` (the jobs go to the default database)."""
    if database not in connections.databases:
        raise CeleryBeatUnavailable(f"No database alias {database!r} in DATABASES.")
    tasks, crontabs, intervals = _beat_rows(database)
    report = CeleryBeatImportReport(dry_run=dry_run, database=database)
    now = clock.now()
    with transaction.atomic():
        task_functions_sync()
        functions = {tf.name: tf.pk for tf in TaskFunction.objects.active()}
        for row in sorted(tasks, key=lambda r: r["name"]):
            outcome = PeriodicTaskOutcome(name=row["name"], task=row["task"])
            report.tasks.append(outcome)
            fields = _job_fields(row, crontabs, intervals, functions, now, outcome)
            if outcome.skipped:
                continue
            if ScheduledJob.objects.active().filter(name=fields["name"]).exists():
                outcome.skipped = "a job of this name exists already; it is left as it is"
                continue
            try:
                job_create(user=user, **fields)  # validates first: an invalid row writes nothing
            except ValidationError as exc:
                outcome.skipped = "not a valid job here: " + "; ".join(
                    f"{name}: {' '.join(messages)}" for name, messages in exc.message_dict.items()
                )
        if dry_run:
            transaction.set_rollback(True)
    return report


# --- reading django-celery-beat's tables -----------------------------------------------------------


def _beat_rows(database: str) -> tuple[list[dict], dict[int, dict], dict[int, dict]]:
    connection = connections[database]
    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
        missing = [t for t in (PERIODIC_TASK_TABLE, CRONTAB_TABLE, INTERVAL_TABLE) if t not in tables]
        if missing:
            raise CeleryBeatUnavailable(
                f"Database {database!r} has no django-celery-beat tables ({', '.join(missing)} missing): "
                f"pass --database with the alias of the database django-celery-beat used."
            )
        return (
            _select(connection, cursor, PERIODIC_TASK_TABLE),
            {row["id"]: row for row in _select(connection, cursor, CRONTAB_TABLE)},
            {row["id"]: row for row in _select(connection, cursor, INTERVAL_TABLE)},
        )


def _select(connection, cursor, table: str) -> list[dict]:
    """Every row as a dict of the columns the table has (older releases lack some)."""
    columns = [c.name for c in connection.introspection.get_table_description(cursor, table)]
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    cursor.execute(f"SELECT {quoted} FROM {connection.ops.quote_name(table)}")
    return [dict(zip(columns, values)) for values in cursor.fetchall()]


def _moment(value) -> datetime | None:
    """A timestamp as the driver gave it (SQLite: text, in UTC as Django stores it) made aware."""
    if value is None or value == "":
        return None
    moment = parse_datetime(value) if isinstance(value, str) else value
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


# --- one PeriodicTask as a job ------------------------------------------------------------------------


def _job_fields(row, crontabs, intervals, functions, now, outcome: PeriodicTaskOutcome) -> dict:
    """The job services' fields for one PeriodicTask, or outcome.skipped saying why there are none."""
    if row["task"] not in functions:
        outcome.skipped = (
            f"Celery task {row['task']!r} is not a registered task function; register the function that "
            f"should run with @task_function({row['task']!r}) and import again"
        )
        return {}
    fields = _schedule_fields(row, crontabs, intervals, outcome)
    if outcome.skipped:
        return {}
    arguments = _arguments(row, outcome)
    if outcome.skipped:
        return {}
    fields.update(
        name=row["name"],
        description=row.get("description") or "",
        task_function_id=functions[row["task"]],
        priority=row.get("priority") or 0,
        is_enabled=bool(row.get("enabled", True)),
        **arguments,
    )
    _not_carried_over(row, fields, now, outcome)
    return fields


def _schedule_fields(row, crontabs, intervals, outcome) -> dict:
    if row.get("crontab_id") is not None:
        crontab = crontabs.get(row["crontab_id"])
        if crontab is None:
            outcome.skipped = f"its crontab schedule #{row['crontab_id']} is missing"
            return {}
        day_of_month, day_of_week = str(crontab["day_of_month"]), str(crontab["day_of_week"])
        if not day_of_month.startswith("*") and not day_of_week.startswith("*"):
            # Celery runs only on days matching both; cron runs on days matching either.
            outcome.skipped = (
                f"Celery runs it on days that are both day of month {day_of_month!r} and day of week "
                f"{day_of_week!r}; a cron expression would run on either: make it by hand"
            )
            return {}
        expression = " ".join(str(crontab[name]).strip() for name in CRONTAB_FIELDS)
        zone = str(crontab.get("timezone") or settings.TIME_ZONE)
        outcome.schedule = f'cron "{expression}" in {zone}'
        return {"job_type_id": JobType.CRON, "cron_expression": expression, "timezone": zone}
    if row.get("interval_id") is not None:
        interval = intervals.get(row["interval_id"])
        if interval is None:
            outcome.skipped = f"its interval schedule #{row['interval_id']} is missing"
            return {}
        if interval["period"] not in INTERVAL_PERIODS:
            outcome.skipped = f"an interval in {interval['period']} cannot be held: jobs count whole seconds"
            return {}
        outcome.schedule = f"every {interval['every']} {interval['period']}"
        return {
            "job_type_id": JobType.INTERVAL,
            f"interval_{interval['period']}": interval["every"],
            "timezone": settings.TIME_ZONE,
        }
    if row.get("clocked_id") is not None:
        outcome.skipped = "a clocked schedule (one run at a set time) has no counterpart: jobs repeat"
    elif row.get("solar_id") is not None:
        outcome.skipped = "a solar schedule (sunrise, sunset...) has no counterpart: use a cron job"
    else:
        outcome.skipped = "it has no schedule"
    return {}


def _arguments(row, outcome) -> dict:
    values = {}
    for column, kind, example in (("args", list, "[1, 2]"), ("kwargs", dict, '{"a": 1}')):
        text = row.get(column) or ("[]" if kind is list else "{}")
        try:
            value = json.loads(text)
        except ValueError:
            outcome.skipped = f"its {column} are not JSON: {text[:80]!r}"
            return {}
        if not isinstance(value, kind):
            outcome.skipped = f"its {column} must be a JSON {kind.__name__} such as {example}, not {text[:80]!r}"
            return {}
        values[column] = value
    return values


def _not_carried_over(row, fields, now, outcome) -> None:
    """What of the task the job cannot hold: listed on the outcome, and made safe where it matters."""
    notes = outcome.not_carried_over
    if row.get("one_off"):
        if fields["is_enabled"]:
            notes.append("one_off (jobs repeat): imported disabled; trigger it once by hand, or enable it to repeat")
            fields["is_enabled"] = False
        else:
            notes.append("one_off (jobs repeat)")
    expires = _moment(row.get("expires"))
    if expires is not None and expires <= now:
        if fields["is_enabled"]:
            fields["is_enabled"] = False
            notes.append(f"expires ({expires.isoformat()}, passed): imported disabled")
    elif expires is not None:
        notes.append(f"expires {expires.isoformat()} (jobs have no end time): it keeps running after that")
    start_time = _moment(row.get("start_time"))
    if start_time is not None and start_time > now:
        notes.append(f"start_time {start_time.isoformat()} (jobs have no start time): it runs from now on")
    if row.get("expire_seconds"):
        notes.append(f"expire_seconds {row['expire_seconds']} (Celery message expiry)")
    for option in ("queue", "exchange", "routing_key"):
        if row.get(option):
            notes.append(f"{option} {row[option]!r} (runs go where the task function says)")
    if (row.get("headers") or "{}").strip() not in ("", "{}"):
        notes.append("headers")

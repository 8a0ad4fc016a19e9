"""Services for jobs: create, update, delete, pause, resume, enable, disable and trigger."""

import math
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from scheduler import clock
from scheduler.enums import ExecutionStatus, ExecutionTrigger
from scheduler.models import Calendar, JobExecution, JobType, ScheduledJob, TaskFunction
from scheduler.services.audit import job_change
from scheduler.services.changes import changes_announce
from scheduler.services.cron import cron_validate, zone_get
from scheduler.services.schedules import (
    ScheduleEnded,
    job_first_fire_time,
    job_next_fire_time,
    job_rescheduled_fire_time,
    job_schedule_describe,
    job_start_at,
    job_upcoming_fire_times,
)

EDITABLE_FIELDS = (
    "name",
    "description",
    "task_function",
    "job_type",
    *ScheduledJob.INTERVAL_FIELDS,
    "cron_expression",
    "timezone",
    "args",
    "kwargs",
    "priority",
    "max_instances",
    "misfire_grace_time",
    "coalesce",
    "history_limit",
    "overlap_policy",
    "max_retries",
    "retry_backoff",
    "timeout",
    "pause_after_failures",
    "run_at",
    "start_at",
    "end_at",
    "jitter_seconds",
    "max_runs",
    "exclude_calendar",
    "is_enabled",
)
# A change of one of these computes the next fire time afresh.
SCHEDULE_FIELDS = (
    "job_type_id",
    *ScheduledJob.INTERVAL_FIELDS,
    "cron_expression",
    "timezone",
    "run_at",
    "start_at",
    "end_at",
    "exclude_calendar_id",
)
# What a date job (type 3) takes no value for: it runs once, at run_at.
NOT_FOR_DATE_JOBS = ("start_at", "end_at", "max_runs", "exclude_calendar")
# What a declaration in code sets (registry.cron / registry.interval): read-only on a job that code
# owns (ScheduledJob.is_code_owned). Its state (enable, pause, ...) and the other fields stay the
# operators'. As attributes; errors name them as the other services do (task_function, job_type).
CODE_OWNED_FIELDS = (
    "name",
    "description",
    "task_function_id",
    "job_type_id",
    *ScheduledJob.INTERVAL_FIELDS,
    "cron_expression",
    "timezone",
    "args",
    "kwargs",
    "priority",
    "max_instances",
    "misfire_grace_time",
    "coalesce",
)
# Written only by the sync of declared jobs (services.declarations).
CODE_SYNC_FIELDS = ("managed_by", "declaration_removed_at")
MAX_INTERVAL = timedelta(days=3650)


# --- validation --------------------------------------------------------------------------------


def _job_assign(job: ScheduledJob, fields: dict, *, from_code: bool = False) -> None:
    unknown = set(fields) - set(EDITABLE_FIELDS) - {"task_function_id", "job_type_id", "exclude_calendar_id"}
    if from_code:
        unknown -= set(CODE_SYNC_FIELDS)
    if unknown:
        raise TypeError(f"Not editable through the job services: {', '.join(sorted(unknown))}")
    for key, value in fields.items():
        if key in ("task_function_id", "task_function") and not isinstance(value, TaskFunction):
            job.task_function_id = value
            job._state.fields_cache.pop("task_function", None)
        elif key in ("job_type_id", "job_type") and not isinstance(value, JobType):
            job.job_type_id = value
            job._state.fields_cache.pop("job_type", None)
        elif key in ("exclude_calendar_id", "exclude_calendar") and not isinstance(value, Calendar):
            job.exclude_calendar_id = value
            job._state.fields_cache.pop("exclude_calendar", None)
        else:
            setattr(job, key, value)
    if isinstance(job.name, str):
        job.name = job.name.strip()
    if isinstance(job.cron_expression, str) and not job.cron_expression.strip():
        job.cron_expression = None
    if job.job_type_id in (JobType.CRON, JobType.DATE):
        # Zero means "no interval" to most clients; keep cron rows free of interval values.
        for field in ScheduledJob.INTERVAL_FIELDS:
            if getattr(job, field) == 0:
                setattr(job, field, None)
    if job.args is None:
        job.args = []
    if job.kwargs is None:
        job.kwargs = {}
    if job.jitter_seconds is None:
        job.jitter_seconds = 0


def _job_validate(job: ScheduledJob, *, check_task_function: bool) -> None:
    """Raise ValidationError naming every offending field; cron is checked in the job's timezone."""
    errors: dict[str, list] = {}

    def add(field, message):
        errors.setdefault(field, []).append(ValidationError(message))

    try:
        job.full_clean(
            exclude=["task_function", "job_type", "exclude_calendar", "created_by", "updated_by"],
            validate_unique=False,
            validate_constraints=False,
        )
    except ValidationError as exc:
        for field, field_errors in exc.error_dict.items():
            errors.setdefault(field, []).extend(field_errors)

    task_function = None
    if job.task_function_id is None:
        add("task_function", "Choose the task function this job runs.")
    else:
        task_function = TaskFunction.objects.filter(pk=_as_int(job.task_function_id)).first()
        if task_function is None:
            add("task_function", f"No task function has id {job.task_function_id!r}.")
        elif check_task_function and not task_function.is_active:
            add(
                "task_function",
                f"Task function {task_function.name!r} is inactive (no longer registered in "
                f"code); choose an active one.",
            )

    if job.job_type_id is None:
        add("job_type", "Choose a job type: 1 (interval), 2 (cron) or 3 (date: once).")
    elif _as_int(job.job_type_id) not in (JobType.INTERVAL, JobType.CRON, JobType.DATE):
        add("job_type", f"Unknown job type {job.job_type_id!r}: use 1 (interval), 2 (cron) or 3 (date: once).")
    else:
        job.job_type_id = _as_int(job.job_type_id)

    if "timezone" not in errors:
        try:
            zone_get(job.timezone)
        except ValidationError as exc:
            errors["timezone"] = exc.error_list

    if job.job_type_id == JobType.INTERVAL:
        if job.cron_expression:
            add("cron_expression", "Interval jobs take no cron expression: clear it, or use job type 2 (cron).")
        interval_errors = [f for f in ScheduledJob.INTERVAL_FIELDS if f in errors]
        if not interval_errors:
            total = job.interval_total_seconds
            if total <= 0:
                add(
                    "interval_seconds",
                    "An interval job needs at least one of interval seconds, minutes, hours or days greater than 0.",
                )
            elif total > MAX_INTERVAL.total_seconds():  # timedelta() itself overflows on huge input
                add("interval_days", "The interval may be at most 3650 days; use a cron job for rarer runs.")
    elif job.job_type_id == JobType.CRON:
        for field in ScheduledJob.INTERVAL_FIELDS:
            if getattr(job, field) not in (None, 0) and field not in errors:
                add(field, "Cron jobs take no interval: clear this field, or use job type 1 (interval).")
        if job.cron_expression is None:
            add("cron_expression", "A cron job needs a cron expression, e.g. '0 2 * * *'.")
        elif "cron_expression" not in errors and "timezone" not in errors:
            try:
                job.cron_expression = cron_validate(job.cron_expression, job.timezone)
            except ValidationError as exc:
                errors["cron_expression"] = exc.error_list
    elif job.job_type_id == JobType.DATE:
        for field in ScheduledJob.INTERVAL_FIELDS:
            if getattr(job, field) not in (None, 0) and field not in errors:
                add(field, "Date jobs take no interval: clear this field, or use job type 1 (interval).")
        if job.cron_expression:
            add("cron_expression", "Date jobs take no cron expression: clear it, or use job type 2 (cron).")
        if job.run_at is None and "run_at" not in errors:
            add("run_at", "A date job (type 3) needs runAt: the moment it runs, e.g. 2026-12-24T18:00:00+01:00.")
    for field, message in _when_problems(job, errors).items():
        add(field, message)

    for field, message in _arguments_problems(job.args, job.kwargs).items():
        add(field, message)

    if "name" not in errors and _name_taken(job):
        add("name", f"A job named {job.name!r} already exists; choose another name.")

    if errors:
        raise ValidationError(errors)
    if task_function is not None:
        job.task_function = task_function


def _when_problems(job: ScheduledJob, errors: dict) -> dict[str, str]:
    """What is wrong with when the job runs: its window, one date, jitter, run limit, calendar."""
    problems = {}
    if job.job_type_id == JobType.DATE:
        for field in NOT_FOR_DATE_JOBS:
            if getattr(job, f"{field}_id" if field == "exclude_calendar" else field) is not None:
                problems[field] = "A date job runs once, at its runAt: it takes no window, run limit or calendar."
    elif job.run_at is not None:
        problems["run_at"] = (
            "Only a date job (job type 3) runs at runAt; an interval or cron job takes startAt / endAt for a window."
        )
    if job.start_at is not None and job.end_at is not None and job.start_at >= job.end_at:
        problems["end_at"] = "endAt must be after startAt."
    if (
        job.job_type_id == JobType.INTERVAL
        and job.jitter_seconds
        and not any(f in errors for f in ScheduledJob.INTERVAL_FIELDS)
    ):
        interval = job.interval_total_seconds
        if 0 < interval <= job.jitter_seconds:
            problems["jitter_seconds"] = (
                f"A jitter of {job.jitter_seconds}s is not shorter than the interval of {interval}s: a run "
                f"never starts as late as the next fire time, so use a jitter below the interval."
            )
    if job.exclude_calendar_id is not None:
        if not Calendar.objects.filter(pk=_as_int(job.exclude_calendar_id)).exists():
            problems["exclude_calendar"] = (
                f"No calendar has id {job.exclude_calendar_id!r} (GET /calendars lists them)."
            )
    return problems


def _fire_time_first(job: ScheduledJob, compute) -> datetime | None:
    """A new next run time for an enabled job, or a ValidationError naming what leaves it none."""
    try:
        return compute()
    except ScheduleEnded as exc:
        if job.job_type_id == JobType.DATE:
            raise ValidationError({"run_at": f"This job's one fire time has passed ({exc}): move runAt."}) from None
        raise ValidationError(
            {"end_at": f"This job has no fire time left before its endAt ({exc}): move endAt later to run it again."}
        ) from None
    except (ValueError, OverflowError) as exc:  # every candidate on a listed date, or no date at all
        field = "exclude_calendar" if job.exclude_calendar_id is not None else "cron_expression"
        raise ValidationError({field: f"This schedule has no next fire time: {exc}."}) from None


def _run_at_check(job: ScheduledJob, now: datetime) -> None:
    """A date job's moment may be past by at most its misfire grace time (it would be missed)."""
    if job.job_type_id == JobType.DATE and job.run_at is not None:
        if job.run_at < now - timedelta(seconds=job.misfire_grace_time):
            raise ValidationError(
                {
                    "run_at": f"runAt ({job.run_at.isoformat()}) is more than the misfire grace time "
                    f"({job.misfire_grace_time}s) in the past: the run would be missed. Choose a later moment."
                }
            )


def _runs_left_check(job: ScheduledJob) -> None:
    if job.max_runs is not None and job.scheduled_runs >= job.max_runs:
        raise ValidationError(
            {
                "max_runs": f"This job has started {job.scheduled_runs} scheduled runs, its maxRuns of "
                f"{job.max_runs}: raise maxRuns to run it again, or leave it disabled."
            }
        )


def _start_update(job: ScheduledJob) -> None:
    """next_start_at to go with the job's next_run_time (its jitter; None without)."""
    job.next_start_at = job_start_at(job) if job.is_enabled and job.next_run_time else None


MAX_JSON_DEPTH = 32


def _arguments_problems(args, kwargs) -> dict[str, str]:
    """What is wrong with a job's (or a run's) positional and keyword arguments, by field."""
    problems = {}
    if not isinstance(args, list):
        problems["args"] = 'args must be a JSON list, e.g. [1, "two"].'
    elif problem := _json_storage_problem(args):
        problems["args"] = f"args cannot be stored: {problem}."
    if not isinstance(kwargs, dict):
        problems["kwargs"] = 'kwargs must be a JSON object, e.g. {"seconds": 5}.'
    elif problem := _json_storage_problem(kwargs):
        problems["kwargs"] = f"kwargs cannot be stored: {problem}."
    return problems


def _json_storage_problem(value) -> str | None:
    """Why a JSON value could not be stored on every database and read back as strict JSON, or None.

    PostgreSQL's jsonb refuses NaN, infinities and NUL characters, lone surrogates cannot be
    encoded at all, and very deep nesting cannot be rendered back.
    """
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            return f"it is nested more than {MAX_JSON_DEPTH} levels deep"
        if isinstance(item, float) and not math.isfinite(item):
            return "numbers must be finite (no NaN or Infinity)"
        texts = []
        if isinstance(item, str):
            texts = [item]
        elif isinstance(item, dict):
            texts = [key for key in item if isinstance(key, str)]
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend((child, depth + 1) for child in item)
        for text in texts:
            if "\x00" in text:
                return "text may not contain NUL (\\u0000) characters"
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return "text may not contain unpaired surrogate characters"
    return None


def _code_owned_values(job: ScheduledJob) -> dict:
    return {field: getattr(job, field) for field in CODE_OWNED_FIELDS}


def _code_owned_refuse(job: ScheduledJob, before: dict) -> None:
    """Refuse changes to what code declares on a job that code owns (sending the same value is fine)."""
    if not job.is_code_owned:
        return
    changed = [field for field, value in before.items() if getattr(job, field) != value]
    if changed:
        message = (
            f"This job is defined in code ({job.managed_by}): its schedule, arguments and other declared "
            f"fields change only there (then deploy, or run manage.py sync_jobs)."
        )
        raise ValidationError({field.removesuffix("_id"): message for field in changed})


def _as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _name_taken(job: ScheduledJob) -> bool:
    return ScheduledJob.objects.active().filter(name=job.name).exclude(pk=job.pk).exists()


def _save(job: ScheduledJob, *, update_fields=None) -> None:
    try:
        with transaction.atomic():
            job.save(update_fields=update_fields)
    except IntegrityError:
        # The database is the last guard when two requests race on the same name.
        if _name_taken(job):
            raise ValidationError({"name": f"A job named {job.name!r} already exists; choose another name."}) from None
        raise


def job_check(job: ScheduledJob | None = None, **fields) -> None:
    """Validate a create (job=None) or an edit without saving: raises what job_create/job_update would."""
    candidate = ScheduledJob() if job is None else ScheduledJob.objects.get(pk=job.pk)
    previous_function = None if job is None else candidate.task_function_id
    owned_before = _code_owned_values(candidate)
    _job_assign(candidate, fields)
    _code_owned_refuse(candidate, owned_before)
    _job_validate(candidate, check_task_function=candidate.task_function_id != previous_function)


PREVIEW_FIELDS = {
    "job_type",
    "timezone",
    "cron_expression",
    "run_at",
    "start_at",
    "end_at",
    *ScheduledJob.INTERVAL_FIELDS,
}


def job_schedule_preview(*, count: int = 5, now=None, **schedule_fields) -> tuple[str, list[datetime]]:
    """Describe a schedule being edited and list its next fire times, as the engine will fire them.

    Raises ValidationError for the schedule's fields only (name, task function are not needed).
    """
    job = ScheduledJob(name="preview")
    _job_assign(job, schedule_fields)
    try:
        _job_validate(job, check_task_function=False)
    except ValidationError as exc:
        errors = {k: v for k, v in exc.error_dict.items() if k in PREVIEW_FIELDS}
        if errors:
            raise ValidationError(errors) from None
    return job_schedule_describe(job), job_upcoming_fire_times(job, count=count, now=now)


# --- writes ------------------------------------------------------------------------------------


def job_create(*, user=None, from_code: bool = False, **fields) -> ScheduledJob:
    """Create a job; from_code: the sync of declared jobs, which also sets CODE_SYNC_FIELDS."""
    job = ScheduledJob(created_by=_user_or_none(user), updated_by=_user_or_none(user))
    _job_assign(job, fields, from_code=from_code)
    _job_validate(job, check_task_function=True)
    now = clock.now()
    _run_at_check(job, now)
    job.next_run_time = _fire_time_first(job, lambda: job_first_fire_time(job, now)) if job.is_enabled else None
    with job_change("create", user=user) as change:
        _save(job)
        change.job_id = job.pk
        if job.jitter_seconds and job.next_run_time:  # the delay depends on the job's id
            _start_update(job)
            job.save(update_fields=["next_start_at"])
        changes_announce(job_id=job.pk)
    return job


def job_update(job: ScheduledJob, *, user=None, from_code: bool = False, **fields) -> ScheduledJob:
    """Edit a job; a changed schedule (or re-enable) restarts it from now. What code declares on a
    job code owns changes only from_code (the sync of declared jobs)."""
    with job_change("edit", job.pk, user=user):
        current = _locked(job)
        before = {f: getattr(current, f) for f in (*SCHEDULE_FIELDS, "is_enabled", "task_function_id", "max_runs")}
        owned_before = _code_owned_values(current)
        _job_assign(current, fields, from_code=from_code)
        if not from_code:
            _code_owned_refuse(current, owned_before)
        # A job left on a function that has since gone inactive may still be edited (e.g. paused
        # or renamed); only choosing an inactive function is refused.
        _job_validate(current, check_task_function=current.task_function_id != before["task_function_id"])
        now = clock.now()
        schedule_changed = any(getattr(current, f) != before[f] for f in SCHEDULE_FIELDS)
        if current.run_at != before["run_at"]:
            _run_at_check(current, now)
        if current.is_enabled and (not before["is_enabled"] or current.max_runs != before["max_runs"]):
            _runs_left_check(current)
        if not current.is_enabled:
            current.next_run_time = None
            if before["is_enabled"]:
                current.disabled_reason = ""
        elif not before["is_enabled"]:
            current.next_run_time = _fire_time_first(current, lambda: job_first_fire_time(current, now))
            current.disabled_reason = ""
        elif schedule_changed:
            current.next_run_time = _fire_time_first(current, lambda: job_rescheduled_fire_time(current, now))
        _start_update(current)
        current.updated_by = _user_or_none(user)
        _save(current)
        changes_announce(job_id=current.pk)
    return current


def job_delete(job: ScheduledJob, *, user=None, from_code: bool = False) -> None:
    """Soft delete: the job stops and leaves every list; its history stays. A job code owns is
    deleted only from_code (sync_jobs --prune, once its declaration is gone)."""
    with job_change("delete", job.pk, user=user):
        current = _locked(job)
        if current.is_code_owned and not from_code:
            raise ValidationError({"managed_by": job_delete_refusal(current)})
        current.is_active = False
        current.next_run_time = current.next_start_at = None
        current.updated_by = _user_or_none(user)
        current.save(update_fields=["is_active", "next_run_time", "next_start_at", "updated_by", "updated_at"])
        changes_announce(job_id=current.pk)
    job.is_active = False
    job.next_run_time = None


def job_delete_refusal(job: ScheduledJob) -> str:
    """Why a job that code owns cannot be deleted here, and how it is deleted."""
    return (
        f"This job is defined in code ({job.managed_by}): remove its declaration there, then "
        f"manage.py sync_jobs disables it (or deletes it, with --prune)."
    )


def job_pause(job: ScheduledJob, *, user=None, reason: str = "") -> ScheduledJob:
    """Keep the job scheduled but stop it firing until resumed."""
    with job_change("pause", job.pk, user=user, reason=(reason or "").strip()):
        current = _locked(job)
        current.is_paused = True
        current.pause_reason = (reason or "").strip()
        current.updated_by = _user_or_none(user)
        current.save(update_fields=["is_paused", "pause_reason", "updated_by", "updated_at"])
        changes_announce(job_id=current.pk)
    return current


def job_resume(job: ScheduledJob, *, user=None) -> ScheduledJob:
    """Let a paused job fire again from now on, without catching up the paused period."""
    with job_change("resume", job.pk, user=user):
        current = _locked(job)
        current.is_paused = False
        current.pause_reason = ""
        if current.is_enabled:
            try:
                current.next_run_time = job_next_fire_time(current, clock.now())
            except ScheduleEnded as exc:  # its window ended (or its one date passed) while paused
                current.next_run_time, current.is_enabled, current.disabled_reason = None, False, str(exc)[:300]
            _start_update(current)
        current.updated_by = _user_or_none(user)
        current.save(
            update_fields=[
                "is_paused",
                "pause_reason",
                "next_run_time",
                "next_start_at",
                "is_enabled",
                "disabled_reason",
                "updated_by",
                "updated_at",
            ]
        )
        changes_announce(job_id=current.pk)
    return current


def job_enable(job: ScheduledJob, *, user=None) -> ScheduledJob:
    """Put a disabled job back on the schedule with a fresh next run."""
    with job_change("enable", job.pk, user=user):
        current = _locked(job)
        if not current.is_enabled:
            now = clock.now()
            _runs_left_check(current)
            if current.job_type_id == JobType.DATE and current.run_at is not None:
                try:
                    _run_at_check(current, now)
                except ValidationError:
                    raise ValidationError(
                        {"run_at": f"This job's one fire time ({current.run_at.isoformat()}) has passed: move runAt."}
                    ) from None
            current.is_enabled = True
            current.next_run_time = _fire_time_first(current, lambda: job_first_fire_time(current, now))
            current.disabled_reason = ""
            _start_update(current)
        current.updated_by = _user_or_none(user)
        current.save(
            update_fields=[
                "is_enabled",
                "next_run_time",
                "next_start_at",
                "disabled_reason",
                "updated_by",
                "updated_at",
            ]
        )
        changes_announce(job_id=current.pk)
    return current


def job_disable(job: ScheduledJob, *, user=None) -> ScheduledJob:
    """Take a job off the schedule entirely."""
    with job_change("disable", job.pk, user=user):
        current = _locked(job)
        current.is_enabled = False
        current.next_run_time = current.next_start_at = None
        current.disabled_reason = ""
        current.updated_by = _user_or_none(user)
        current.save(
            update_fields=[
                "is_enabled",
                "next_run_time",
                "next_start_at",
                "disabled_reason",
                "updated_by",
                "updated_at",
            ]
        )
        changes_announce(job_id=current.pk)
    return current


def job_trigger(job: ScheduledJob, *, user=None, args: list | None = None, kwargs: dict | None = None) -> JobExecution:
    """Ask for one manual run now; a scheduler process picks it up and runs it.

    args / kwargs, when given, replace the job's for this run only (validated as the job's are).
    """
    if args is not None or kwargs is not None:
        problems = _arguments_problems([] if args is None else args, {} if kwargs is None else kwargs)
        if problems:
            raise ValidationError(problems)
    with job_change("trigger", job.pk, user=user) as change:
        # The row as it is now, locked: the caller's copy may predate a delete or a retired function.
        current = ScheduledJob.objects.select_for_update().get(pk=job.pk)
        if not current.is_active:
            raise ValidationError({"job": "This job was deleted; it cannot run."})
        task_function = TaskFunction.objects.get(pk=current.task_function_id)
        if not task_function.is_active:
            raise ValidationError(
                {
                    "task_function": f"Task function {task_function.name!r} is inactive (no longer "
                    f"registered in code); point the job at an active one before running it."
                }
            )
        execution = JobExecution.objects.create(
            job=current,
            status=ExecutionStatus.PENDING,
            trigger=ExecutionTrigger.MANUAL,
            scheduled_time=clock.now(),
            triggered_by=_user_or_none(user),
            args=current.args if args is None else args,
            kwargs=current.kwargs if kwargs is None else kwargs,
        )
        change.details["execution_id"] = execution.pk
        changes_announce(job_id=job.pk, execution_id=execution.pk)
    return execution


def _locked(job: ScheduledJob) -> ScheduledJob:
    """The job's current row, locked for the transaction; refuses deleted jobs."""
    current = ScheduledJob.objects.select_for_update().get(pk=job.pk)
    if not current.is_active:
        raise ValidationError({"job": "This job was deleted; it can no longer be changed."})
    return current


def _user_or_none(user):
    return user if user is not None and getattr(user, "is_authenticated", False) else None

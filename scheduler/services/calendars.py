"""Calendars of dates to skip: create and edit them, and move the next run of the jobs using them."""

import logging
from datetime import date, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from scheduler import clock
from scheduler.models import Calendar, ScheduledJob
from scheduler.services.changes import changes_announce
from scheduler.services.cron import zone_get
from scheduler.services.schedules import ScheduleEnded, job_next_fire_time, job_start_at

logger = logging.getLogger("scheduler.calendars")
MAX_CALENDAR_DATES = 10_000
_TICK = timedelta(microseconds=1)


def calendar_dates_parse(values) -> list[str]:
    """Dates as "YYYY-MM-DD" (a list, or text with one date per line), sorted and without
    duplicates; a ValidationError on `dates` names the first that is not a date."""
    if isinstance(values, str):
        values = [line.strip() for line in values.splitlines()]
    if not isinstance(values, (list, tuple)):
        raise ValidationError({"dates": 'dates must be a list of "YYYY-MM-DD" strings.'})
    parsed = set()
    for value in values:
        if value in ("", None):
            continue
        try:
            if not isinstance(value, str) or len(value) != 10:
                raise ValueError
            parsed.add(date.fromisoformat(value))
        except ValueError:
            raise ValidationError(
                {"dates": f'{value!r} is not a date: write one as "YYYY-MM-DD", e.g. 2026-12-25.'}
            ) from None
    if len(parsed) > MAX_CALENDAR_DATES:
        raise ValidationError({"dates": f"A calendar holds at most {MAX_CALENDAR_DATES:,} dates."})
    return [d.isoformat() for d in sorted(parsed)]


def calendar_save(calendar: Calendar | None = None, **fields) -> Calendar:
    """Create (calendar=None) or change a calendar; the jobs using it get their next run again,
    so none fires on a date just added (nor waits past one just removed)."""
    calendar = calendar or Calendar()
    for key, value in fields.items():
        if key not in ("name", "timezone", "dates", "description"):
            raise TypeError(f"Not a calendar field: {key}")
        setattr(calendar, key, value)
    errors = {}
    calendar.name = (calendar.name or "").strip()
    if not calendar.name:
        errors["name"] = ["Give the calendar a name."]
    elif Calendar.objects.filter(name=calendar.name).exclude(pk=calendar.pk).exists():
        errors["name"] = [f"A calendar named {calendar.name!r} already exists; choose another name."]
    try:
        zone_get(calendar.timezone)
    except ValidationError as exc:
        errors["timezone"] = exc.messages
    try:
        calendar.dates = calendar_dates_parse(calendar.dates)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            calendar.save()
            moved = calendar_jobs_reschedule(calendar)
            changes_announce()
    except IntegrityError:
        raise ValidationError({"name": [f"A calendar named {calendar.name!r} already exists."]}) from None
    if moved:
        logger.info("Calendar %s saved: %d jobs got a new next run", calendar.name, moved)
    return calendar


def calendar_jobs_reschedule(calendar: Calendar, now=None) -> int:
    """Recompute the next run of the scheduled jobs that skip this calendar's dates; returns how
    many moved. A job due already (about to be claimed) keeps its fire time unless it is listed."""
    now = now or clock.now()
    moved = 0
    jobs = ScheduledJob.objects.schedulable().filter(exclude_calendar=calendar, next_run_time__isnull=False)
    for job in jobs.select_for_update(of=("self",)).select_related("exclude_calendar"):
        job.exclude_calendar = calendar  # the dates just saved
        try:
            fire_time = job_next_fire_time(job, min(now, job.next_run_time - _TICK))
        except ScheduleEnded as exc:
            job.next_run_time, job.is_enabled, job.disabled_reason = None, False, str(exc)[:300]
            fire_time = None
        except (ValueError, OverflowError) as exc:
            reason = f"paused: every fire time falls on a date of calendar {calendar.name!r} ({exc})"
            job.is_paused, job.pause_reason = True, reason
            fire_time = job.next_run_time
        if fire_time == job.next_run_time and job.is_enabled and not job.is_paused:
            continue
        job.next_run_time = fire_time
        job.next_start_at = job_start_at(job) if fire_time else None
        job.save(
            update_fields=[
                "next_run_time",
                "next_start_at",
                "is_enabled",
                "disabled_reason",
                "is_paused",
                "pause_reason",
                "updated_at",
            ]
        )
        moved += 1
    return moved


def calendar_delete(calendar: Calendar) -> None:
    """Delete a calendar no job refers to (refused, naming them, while one does)."""
    using = list(ScheduledJob.objects.filter(exclude_calendar=calendar).values_list("name", flat=True)[:5])
    if using:
        raise ValidationError(
            {"dates": f"Jobs still skip this calendar's dates ({', '.join(using)}): point them elsewhere first."}
        )
    calendar.delete()

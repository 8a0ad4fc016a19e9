"""Schedule arithmetic: a job's fire times and its schedule in words, from a model or a claimed row.

Interval jobs fire on an exact grid (anchor + k * interval, never drifting, because (job,
scheduled_time) identifies a run); cron jobs follow services.cron in the job's timezone; date jobs
fire once, at run_at. A job's window (start_at, end_at) and its calendar of dates to skip apply
here, so the engine, the previews and backfills agree on every fire time; so does jitter (the
planned start of each fire time).
"""

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError

from scheduler import clock
from scheduler.durations import interval_words
from scheduler.models import JobType, ScheduledJob, interval_total_seconds
from scheduler.services.cron import cron_describe, cron_next_fire_time

_TICK = timedelta(microseconds=1)
# Listed days skipped in a row before a schedule is taken to have no next fire time at all.
MAX_SKIPPED_DAYS = 3660


class ScheduleEnded(ValueError):
    """No fire time is left: the window's end is behind it, or a date job's one run. Its message
    is the reason the job is disabled with."""


def interval_next_fire_time(anchor: datetime, interval: timedelta, after: datetime) -> datetime:
    """The first point of the grid anchor + k * interval (k >= 0) strictly after `after`."""
    if anchor > after:
        return anchor
    steps = (after - anchor) // interval + 1
    return anchor + steps * interval


def _grid_at_or_after(point: datetime, interval: timedelta, moment: datetime) -> datetime:
    """The first point of the grid through `point` (either way along it) at or after `moment`."""
    return point - ((point - moment) // interval) * interval


@dataclass(frozen=True, slots=True)
class SkipDates:
    """A calendar's dates, read in its timezone."""

    timezone: str
    dates: frozenset

    @classmethod
    def of_calendar(cls, calendar) -> "SkipDates":
        return cls(calendar.timezone, frozenset(date.fromisoformat(d) for d in calendar.dates))

    def listed(self, moment: datetime) -> bool:
        return moment.astimezone(ZoneInfo(self.timezone)).date() in self.dates


def job_skip_dates(job) -> "SkipDates | None":
    """The dates a job skips: a claimed row carries them (the claim reads a batch's calendars in
    one query); a model reads its calendar."""
    if job.exclude_calendar_id is None:
        return None
    if hasattr(job, "skip_dates"):
        return job.skip_dates
    return SkipDates.of_calendar(job.exclude_calendar)


@dataclass(frozen=True, slots=True)
class Schedule:
    """What a job's fire times depend on: a cron expression, an interval in seconds or one date,
    and the bounds every fire time must keep (window, dates to skip)."""

    cron_expression: str | None
    timezone: str
    interval_seconds: int
    run_at: datetime | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    skip: SkipDates | None = None
    # Whether any of the four above is set: a plain schedule's arithmetic checks only this.
    bounded: bool = False

    @classmethod
    def of(cls, job, *, with_calendar: bool = True) -> "Schedule":
        """From a ScheduledJob or a claimed row holding the same columns (without its calendar's
        dates, for the words alone: a list of jobs then reads no calendar per row)."""
        if job.job_type_id == JobType.CRON:
            expression, seconds = job.cron_expression, 0
        elif job.job_type_id == JobType.DATE:
            return cls(None, job.timezone, 0, run_at=job.run_at, bounded=True)
        else:
            expression = None
            seconds = interval_total_seconds(*(getattr(job, f) for f in ScheduledJob.INTERVAL_FIELDS))
        if job.start_at is None and job.end_at is None and job.exclude_calendar_id is None:
            return cls(expression, job.timezone, seconds)
        skip = job_skip_dates(job) if with_calendar else None
        return cls(expression, job.timezone, seconds, None, job.start_at, job.end_at, skip, True)

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self.interval_seconds)

    def end_reason(self) -> str:
        """Why there is no fire time left (what the job is disabled with)."""
        if self.run_at is not None:
            return f"done: ran once at {self.run_at.astimezone(UTC).isoformat()}"
        return f"ended: no fire time after its end at {self.end_at.astimezone(UTC).isoformat()}"

    def first_fire_time(self, now: datetime) -> datetime:
        """The first fire time of the schedule (re)started at `now`: one interval from now, or the
        next cron time; not before start_at (an interval job's grid then starts at start_at)."""
        if self.run_at is not None:
            return self.run_at
        starts_later = self.start_at is not None and self.start_at > now
        if self.cron_expression is not None:
            after = self.start_at - _TICK if starts_later else now
            first = cron_next_fire_time(self.cron_expression, self.timezone, after)
        else:
            first = self.start_at if starts_later else now + self.interval
        return self._bounded(first) if self.bounded else first

    def next_fire_time(self, after: datetime, *, anchor: datetime | None) -> datetime:
        """The first fire time strictly after `after`; an interval job keeps the grid of `anchor`
        (its persisted next run time), or starts a fresh one."""
        if self.run_at is not None:
            if self.run_at > after:
                return self.run_at
            raise ScheduleEnded(self.end_reason())
        if self.cron_expression is not None:
            found = cron_next_fire_time(self.cron_expression, self.timezone, after + _TICK)
        else:
            if anchor is None:
                anchor = self.first_fire_time(clock.now()) if self.bounded else clock.now() + self.interval
            found = interval_next_fire_time(anchor, self.interval, after)
        return self._bounded(found) if self.bounded else found

    def following(self, fire_time: datetime) -> datetime:
        """The fire time after `fire_time`: what the engine schedules after each run."""
        if self.run_at is not None:
            raise ScheduleEnded(self.end_reason())
        if self.cron_expression is not None:
            found = cron_next_fire_time(self.cron_expression, self.timezone, fire_time)
        else:
            found = fire_time + self.interval
        return self._bounded(found) if self.bounded else found

    def upcoming(self, first: datetime, count: int) -> list[datetime]:
        """`first` and the fire times after it, `count` in all or fewer where the schedule ends."""
        times = [first]
        while len(times) < count:
            try:
                times.append(self.following(times[-1]))
            except ScheduleEnded:
                break
        return times

    def between(self, start: datetime, end: datetime, *, anchor: datetime, limit: int) -> list[datetime]:
        """The fire times in (start, end], at most `limit` (a backfill's range). An interval job's
        grid runs through `anchor` both ways, so past fire times are the ones it had."""
        if self.run_at is not None:
            return [self.run_at] if start < self.run_at <= end else []
        try:
            if self.cron_expression is not None:
                found = self._bounded(cron_next_fire_time(self.cron_expression, self.timezone, start))
            else:
                grid = _grid_at_or_after(anchor, self.interval, start)
                found = self._bounded(grid if grid > start else grid + self.interval)
            times = []
            while found <= end and len(times) < limit:
                times.append(found)
                found = self.following(found)
        except ScheduleEnded:
            pass
        return times

    def _base_at_or_after(self, moment: datetime, grid_point: datetime) -> datetime:
        if self.cron_expression is not None:
            return cron_next_fire_time(self.cron_expression, self.timezone, moment - _TICK)
        return _grid_at_or_after(grid_point, self.interval, moment)

    def _bounded(self, fire_time: datetime) -> datetime:
        """The first fire time at or after `fire_time` inside the window and off the listed dates."""
        if self.start_at is not None and fire_time < self.start_at:
            fire_time = self._base_at_or_after(self.start_at, fire_time)
        if self.skip is not None:
            fire_time = self._off_listed_dates(fire_time)
        if self.end_at is not None and fire_time > self.end_at:
            raise ScheduleEnded(self.end_reason())
        return fire_time

    def _off_listed_dates(self, fire_time: datetime) -> datetime:
        zone = ZoneInfo(self.skip.timezone)
        for _ in range(MAX_SKIPPED_DAYS):
            day = fire_time.astimezone(zone).date()
            if day not in self.skip.dates or (self.end_at is not None and fire_time > self.end_at):
                return fire_time
            # Straight to the next day's first fire time: a job every second skips a day at once.
            next_day = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
            fire_time = self._base_at_or_after(next_day, fire_time)
        raise ValueError(f"every fire time for {MAX_SKIPPED_DAYS} days falls on a date of its calendar")

    def describe(self) -> str:
        """'every 5 minutes', 'At 02:00, only on Sunday (Europe/Paris)', 'once at ...'."""
        if self.run_at is not None:
            local = self.run_at.astimezone(ZoneInfo(self.timezone))
            return f"once, at {local:%Y-%m-%d %H:%M:%S}" + ("" if self.timezone == "UTC" else f" ({self.timezone})")
        if self.cron_expression is None:
            return interval_words(self.interval_seconds)
        words = cron_describe(self.cron_expression)
        return words if self.timezone == "UTC" else f"{words} ({self.timezone})"


# --- jitter: when each fire time starts ------------------------------------------------------------


def jitter_delay(job_id: int, fire_time: datetime, jitter_seconds: int, next_fire_time: datetime | None) -> timedelta:
    """The delay of one fire time's start: pseudo-random in [0, min(jitter, next fire time - this
    one)), and the same in every process for (job, fire time)."""
    bound = jitter_seconds * 1_000_000
    if next_fire_time is not None:
        bound = min(bound, (next_fire_time - fire_time) // _TICK)
    if bound <= 0:
        return timedelta(0)
    key = f"{job_id}:{fire_time.astimezone(UTC).isoformat()}".encode()
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return timedelta(microseconds=int.from_bytes(digest, "big") % bound)


def fire_time_start(job, schedule: Schedule, fire_time: datetime | None) -> datetime | None:
    """When `fire_time` of `job` starts, if jitter delays it; None for a job without jitter (it
    starts at the fire time). What next_start_at and an execution's planned_start hold."""
    if not job.jitter_seconds or fire_time is None:
        return None
    try:
        following = schedule.following(fire_time)
    except (ValueError, OverflowError):  # the last fire time: only the jitter bounds it
        following = None
    return fire_time + jitter_delay(job.pk, fire_time, job.jitter_seconds, following)


def job_start_at(job, fire_time: datetime | None = None) -> datetime | None:
    """The next_start_at that goes with `fire_time` (default: the job's next_run_time); every
    writer of next_run_time sets next_start_at from here."""
    fire_time = job.next_run_time if fire_time is None else fire_time
    if not job.jitter_seconds or fire_time is None:
        return None
    return fire_time_start(job, Schedule.of(job), fire_time)


def job_planned_starts(job, fire_times: list[datetime]) -> list[datetime]:
    """The start of each of these consecutive fire times (the fire time itself without jitter)."""
    if not job.jitter_seconds:
        return list(fire_times)
    schedule = Schedule.of(job)
    return [fire_time_start(job, schedule, t) for t in fire_times]


# --- the same questions asked of a job row ------------------------------------------------------


def job_next_fire_time(job, after: datetime) -> datetime:
    """The job's first fire time strictly after `after`, on its grid (interval) or cron."""
    return Schedule.of(job).next_fire_time(after, anchor=job.next_run_time)


def job_following_fire_time(job, fire_time: datetime) -> datetime:
    return Schedule.of(job).following(fire_time)


def job_first_fire_time(job, now: datetime) -> datetime:
    return Schedule.of(job).first_fire_time(now)


def job_rescheduled_fire_time(job: ScheduledJob, now: datetime) -> datetime:
    """First fire time after a schedule edit. An interval job counts from its last run: if that
    was at least one new interval ago it runs now (shortening "every hour" to "every minute" on a
    job that ran 30 minutes ago runs it at once), otherwise one interval after that run."""
    schedule = Schedule.of(job)
    if schedule.cron_expression is None and schedule.run_at is None and job.last_run_time:
        resumed = max(now, job.last_run_time + schedule.interval)
        return schedule._bounded(resumed) if schedule.bounded else resumed
    return schedule.first_fire_time(now)


def job_upcoming_fire_times(job: ScheduledJob, count: int = 5, now=None) -> list[datetime]:
    """The next `count` fire times (fewer where the schedule ends), starting from the persisted
    next_run_time when there is one."""
    schedule = Schedule.of(job)
    try:
        first = job.next_run_time or schedule.first_fire_time(now or clock.now())
    except ScheduleEnded:
        return []
    return schedule.upcoming(first, count)


def job_preview_fire_times(
    job: ScheduledJob, *, count: int = 5, after: datetime | None = None, now=None
) -> list[datetime]:
    """A saved job's next `count` fire times after `after` (default: from its next run), as the
    engine will fire them: it fires the persisted next_run_time first, so a preview from a moment
    before that starts there; from a later moment, at the schedule's first time after it."""
    try:
        if after is None or (job.next_run_time and after < job.next_run_time):
            return job_upcoming_fire_times(job, count=count, now=now)
        schedule = Schedule.of(job)
        return schedule.upcoming(schedule.next_fire_time(after, anchor=job.next_run_time), count)
    except ScheduleEnded:
        return []
    except (ValueError, OverflowError):  # croniter finds no date, or the calendar runs out
        since = f"after {after.isoformat()}" if after else "from its next run"
        raise ValidationError({"after": f"This job has no {count} fire times {since}."}) from None


def job_schedule_describe(job: ScheduledJob) -> str:
    if job.job_type_id == JobType.CRON and not job.cron_expression:
        return ""
    if job.job_type_id == JobType.DATE and job.run_at is None:
        return ""
    if job.job_type_id not in (JobType.CRON, JobType.INTERVAL, JobType.DATE):
        return ""
    return Schedule.of(job, with_calendar=False).describe()

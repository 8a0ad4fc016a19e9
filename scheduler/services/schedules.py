"""Schedule arithmetic: a job's fire times and its schedule in words, from a model or a claimed row.

Interval jobs fire on an exact grid (anchor + k * interval, never drifting, because (job,
scheduled_time) identifies a run); cron jobs follow services.cron in the job's timezone.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError

from scheduler import clock
from scheduler.durations import interval_words
from scheduler.models import JobType, ScheduledJob, interval_total_seconds
from scheduler.services.cron import cron_describe, cron_next_fire_time

_TICK = timedelta(microseconds=1)


def interval_next_fire_time(anchor: datetime, interval: timedelta, after: datetime) -> datetime:
    """The first point of the grid anchor + k * interval (k >= 0) strictly after `after`."""
    if anchor > after:
        return anchor
    steps = (after - anchor) // interval + 1
    return anchor + steps * interval


@dataclass(frozen=True, slots=True)
class Schedule:
    """What a job's fire times depend on: a cron expression, or an interval in seconds."""

    cron_expression: str | None
    timezone: str
    interval_seconds: int

    @classmethod
    def of(cls, job) -> "Schedule":
        """From a ScheduledJob or a claimed row holding the same columns."""
        if job.job_type_id == JobType.CRON:
            return cls(job.cron_expression, job.timezone, 0)
        seconds = interval_total_seconds(*(getattr(job, f) for f in ScheduledJob.INTERVAL_FIELDS))
        return cls(None, job.timezone, seconds)

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self.interval_seconds)

    def first_fire_time(self, now: datetime) -> datetime:
        """The first fire time of the schedule (re)started at `now`: one interval from now, or the
        next cron time."""
        if self.cron_expression is not None:
            return cron_next_fire_time(self.cron_expression, self.timezone, now)
        return now + self.interval

    def next_fire_time(self, after: datetime, *, anchor: datetime | None) -> datetime:
        """The first fire time strictly after `after`; an interval job keeps the grid of `anchor`
        (its persisted next run time), or starts a fresh one."""
        if self.cron_expression is not None:
            return cron_next_fire_time(self.cron_expression, self.timezone, after + _TICK)
        return interval_next_fire_time(anchor or clock.now() + self.interval, self.interval, after)

    def following(self, fire_time: datetime) -> datetime:
        """The fire time after `fire_time`: what the engine schedules after each run."""
        if self.cron_expression is not None:
            return cron_next_fire_time(self.cron_expression, self.timezone, fire_time)
        return fire_time + self.interval

    def upcoming(self, first: datetime, count: int) -> list[datetime]:
        times = [first]
        while len(times) < count:
            times.append(self.following(times[-1]))
        return times

    def describe(self) -> str:
        """'every 5 minutes', 'At 02:00, only on Sunday (Europe/Paris)'."""
        if self.cron_expression is None:
            return interval_words(self.interval_seconds)
        words = cron_describe(self.cron_expression)
        return words if self.timezone == "UTC" else f"{words} ({self.timezone})"


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
    if schedule.cron_expression is None and job.last_run_time:
        return max(now, job.last_run_time + schedule.interval)
    return schedule.first_fire_time(now)


def job_upcoming_fire_times(job: ScheduledJob, count: int = 5, now=None) -> list[datetime]:
    """The next `count` fire times, starting from the persisted next_run_time when there is one."""
    schedule = Schedule.of(job)
    first = job.next_run_time or schedule.first_fire_time(now or clock.now())
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
    except (ValueError, OverflowError):  # croniter finds no date, or the calendar runs out
        since = f"after {after.isoformat()}" if after else "from its next run"
        raise ValidationError({"after": f"This job has no {count} fire times {since}."}) from None


def job_schedule_describe(job: ScheduledJob) -> str:
    if job.job_type_id == JobType.CRON and not job.cron_expression:
        return ""
    if job.job_type_id not in (JobType.CRON, JobType.INTERVAL):
        return ""
    return Schedule.of(job).describe()

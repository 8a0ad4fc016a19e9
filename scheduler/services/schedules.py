"""Schedule arithmetic shared by the services, the admin, the API and the engine: interval grids
and the APScheduler triggers of both schedule types (cron semantics live in services.cron)."""
from datetime import datetime, timedelta

from apscheduler.triggers.base import BaseTrigger

from scheduler.services.cron import cron_next_fire_time


def interval_next_fire_time(anchor: datetime, interval: timedelta, after: datetime) -> datetime:
    """The first point of the grid anchor + k * interval (k >= 0) strictly after `after`."""
    if anchor > after:
        return anchor
    steps = (after - anchor) // interval + 1
    return anchor + steps * interval


_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def interval_describe(total_seconds: int) -> str:
    if total_seconds <= 0:
        return "never"
    parts = []
    remaining = total_seconds
    for unit, size in _UNITS:
        value, remaining = divmod(remaining, size)
        if value:
            parts.append(f"{value} {unit}" + ("s" if value != 1 else ""))
    if len(parts) == 1 and parts[0].startswith("1 "):
        return f"every {parts[0][2:]}"
    return "every " + " ".join(parts)


class StandardCronTrigger(BaseTrigger):
    """APScheduler trigger for a standard cron expression (croniter), with the DST rule above.

    APScheduler's own CronTrigger.from_crontab is not standard cron, so user expressions never
    go through it.
    """

    __slots__ = ("expression", "timezone_name")

    def __init__(self, expression: str, timezone_name: str):
        self.expression = expression
        self.timezone_name = timezone_name

    def get_next_fire_time(self, previous_fire_time, now):
        return cron_next_fire_time(self.expression, self.timezone_name, previous_fire_time or now)

    def __repr__(self):
        return f"<StandardCronTrigger {self.expression!r} {self.timezone_name}>"


class GridIntervalTrigger(BaseTrigger):
    """APScheduler trigger firing every `interval` on the grid anchored at `anchor`.

    APScheduler's IntervalTrigger adds float timestamps, which can drift by a microsecond; fire
    times here are exact, because (job, scheduled_time) identifies a run.
    """

    __slots__ = ("anchor", "interval")

    def __init__(self, interval: timedelta, anchor: datetime):
        self.interval = interval
        self.anchor = anchor

    def get_next_fire_time(self, previous_fire_time, now):
        if previous_fire_time is not None:
            return previous_fire_time + self.interval
        return interval_next_fire_time(self.anchor, self.interval, now - timedelta(microseconds=1))

    def __repr__(self):
        return f"<GridIntervalTrigger every {self.interval} from {self.anchor.isoformat()}>"

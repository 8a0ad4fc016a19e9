"""Cron expressions: validation, fire times in a timezone, and the schedule in words.

Cron means standard 5-field cron as croniter evaluates it, in the job's timezone. Daylight
saving: a wall-clock time skipped by a spring-forward change fires at the first instant after
the gap (croniter's behaviour); a wall-clock time that occurs twice in a fall-back change fires
at its first occurrence only.
"""
import copy
import functools
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, available_timezones

from cron_descriptor import ExpressionDescriptor, Options
from croniter import CroniterBadDateError, CroniterError, croniter
from django.core.exceptions import ValidationError

CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
CRON_FIELDS = ("minute", "hour", "day of month", "month", "day of week")
# croniter extensions that are not standard cron and would surprise a crontab user.
NON_STANDARD_TOKENS = {"?": "'?'", "H": "hashed 'H' values", "R": "random 'R' values"}
_NAMES = re.compile(r"JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|SUN|MON|TUE|WED|THU|FRI|SAT")
# Bound on candidates skipped in one look-up (repeated fall-back times); far above any real need.
_MAX_SKIPPED_CANDIDATES = 1000


@functools.cache
def _known_timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def zone_get(name: str) -> ZoneInfo:
    """Return the ZoneInfo for an IANA name, refusing anything else with a clear message."""
    if not isinstance(name, str) or name not in _known_timezones():
        raise ValidationError(
            f"Unknown timezone {name!r}: use an IANA name such as 'UTC' or 'Europe/Paris'.",
            code="invalid_timezone",
        )
    return ZoneInfo(name)


def cron_validate(expression: str, timezone_name: str = "UTC") -> str:
    """Check a cron expression and return it normalised; raise ValidationError saying why not."""
    if not isinstance(expression, str) or not expression.strip():
        raise ValidationError("A cron expression is required.", code="required")
    normalised = " ".join(expression.split())
    if normalised.startswith("@"):
        if normalised.lower() not in CRON_MACROS:
            raise ValidationError(
                f"Unknown cron macro {normalised!r}; use one of {', '.join(sorted(CRON_MACROS))}.",
                code="invalid_cron",
            )
        normalised = normalised.lower()
    else:
        fields = normalised.split(" ")
        if len(fields) != 5:
            raise ValidationError(
                f"A cron expression has 5 fields (minute hour day-of-month month day-of-week); "
                f"got {len(fields)}.",
                code="invalid_cron",
            )
        for field_name, value in zip(CRON_FIELDS, fields):
            bare = _NAMES.sub("", value.upper())
            for token, label in NON_STANDARD_TOKENS.items():
                if token in bare:
                    raise ValidationError(
                        f"The {field_name} field {value!r} uses {label}, which standard cron "
                        f"does not support.",
                        code="invalid_cron",
                    )
    zone = zone_get(timezone_name)
    try:
        croniter(normalised, datetime.now(zone)).get_next(datetime)
    except CroniterBadDateError:
        raise ValidationError(
            f"The cron expression {normalised!r} never matches a real date.", code="invalid_cron"
        ) from None
    except (CroniterError, ValueError, KeyError, TypeError) as exc:
        raise ValidationError(
            f"Invalid cron expression {normalised!r}: {_cron_error_text(exc)}.", code="invalid_cron"
        ) from None
    return normalised


def _cron_error_text(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    if "out of range" in text:
        return "a value is out of range (minute 0-59, hour 0-23, day 1-31, month 1-12, weekday 0-7)"
    return text


def _is_repeated_wall_time(local: datetime) -> bool:
    """True for the second occurrence of a wall-clock time repeated by a fall-back change."""
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


@functools.lru_cache(maxsize=4096)
def _cron_parsed(expression: str) -> croniter:
    return croniter(expression, 0)


def _cron_iterator(expression: str, start: datetime) -> croniter:
    """croniter(expression, start) without parsing the expression again: at 100,000 cron jobs the
    parse was a fifth of a claim's work. Each caller gets its own copy (claims run in threads)."""
    iterator = copy.copy(_cron_parsed(expression))
    iterator.set_current(start, force=True)
    return iterator


def cron_next_fire_time(expression: str, timezone_name: str, after: datetime) -> datetime:
    """The first fire time strictly after `after`, as an aware UTC datetime."""
    return _cron_next_fire_time(expression, timezone_name, after.astimezone(UTC))


# Jobs sharing an expression and zone fire together, so a claim asks the same question many
# times over (every `0 * * * *` job at each hour); the answer never changes.
@functools.lru_cache(maxsize=8192)
def _cron_next_fire_time(expression: str, timezone_name: str, after_utc: datetime) -> datetime:
    zone = ZoneInfo(timezone_name)
    iterator = _cron_iterator(expression, after_utc.astimezone(zone))
    for _ in range(_MAX_SKIPPED_CANDIDATES):
        candidate = iterator.get_next(datetime).astimezone(UTC)
        if candidate > after_utc and not _is_repeated_wall_time(candidate.astimezone(zone)):
            return candidate
    raise ValueError(f"No fire time found for {expression!r} after {after_utc.isoformat()}.")


def cron_next_fire_times(
    expression: str, timezone_name: str, after: datetime, count: int
) -> list[datetime]:
    times, current = [], after
    for _ in range(count):
        current = cron_next_fire_time(expression, timezone_name, current)
        times.append(current)
    return times


_MACRO_EXPANSIONS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def cron_describe(expression: str) -> str:
    expression = _MACRO_EXPANSIONS.get(expression, expression)
    options = Options()
    options.use_24hour_time_format = True
    options.verbose = False
    try:
        return ExpressionDescriptor(expression, options).get_description()
    except Exception:  # cron-descriptor raises its own assorted errors on odd input
        return expression

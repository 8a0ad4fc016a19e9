"""Cron as the servers' cron means it (Vixie cron: Debian, Ubuntu, RHEL's cronie): validation, fire times, words.

croniter evaluates the fields, on the job's wall clock. This module adds the two rules of Vixie
cron that croniter leaves to its caller, and is the one place that states them:

- Day of month and day of week are ORed when neither field starts with `*`; when either starts
  with `*` (`*/2`), both must match: `0 0 */2 * 1` is midnight on odd days that are Mondays.
- Daylight saving time. A job whose minute or hour field starts with `*` is a "wildcard" job: it
  keeps its cadence in real time, firing at every real minute whose wall-clock time matches, so
  in both copies of an hour repeated by a fall-back change, and not in a spring-forward gap. Any
  other job fires once per wall-clock time: a time skipped by a spring-forward change fires at
  the first instant after the gap, a time repeated by a fall-back change at its first
  occurrence only.

cronsim (healthchecks.io's evaluator, written to match Debian's cron) is the independent
reference the tests compare this module against. Constructs on which croniter and cronsim
disagree are refused, naming the field.
"""

import copy
import functools
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

from cron_descriptor import ExpressionDescriptor, Options
from croniter import CroniterBadDateError, CroniterError, croniter
from django.core.exceptions import ValidationError

# Vixie cron's macros and what they stand for (crontab(5)); @hourly is a wildcard job like its
# five-field form, the others are not.
CRON_MACRO_EXPANSIONS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
CRON_MACROS = frozenset(CRON_MACRO_EXPANSIONS)
CRON_FIELDS = ("minute", "hour", "day of month", "month", "day of week")
MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK = range(5)
# croniter extensions that are not standard cron and would surprise a crontab user.
NON_STANDARD_TOKENS = {"?": "'?'", "H": "hashed 'H' values", "R": "random 'R' values"}
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_NAMES = re.compile("|".join(_MONTH_NAMES + _DAY_NAMES))
_NTH_WEEKDAY = re.compile(r"^(\d+|[A-Z]{3})#\d+$")
# Bound on candidates skipped in one look-up (repeated fall-back times, offset changes crossed);
# far above any real need.
_MAX_SKIPPED_CANDIDATES = 1000
# No zone changes its UTC offset twice within a day, so checking the offset once a day finds
# every change.
_OFFSET_CHECK_STEP = timedelta(days=1)
_TICK = timedelta(microseconds=1)
# Previews may start anywhere in this span; beyond it the calendar arithmetic overflows.
INSTANT_MIN = datetime(1970, 1, 1, tzinfo=UTC)
INSTANT_MAX = datetime(3000, 1, 1, tzinfo=UTC)


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


_ISO_INSTANT = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,6})?)?(?P<offset>[Zz]|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,
)
# "+02:00" in a query string typed by hand arrives as " 02:00": a URL decodes '+' as a space.
_PLUS_AS_SPACE = re.compile(r".*\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,6})?)? \d{2}(?::?\d{2})?", re.ASCII)


def instant_parse(text: str) -> datetime:
    """An ISO 8601 date and time with an offset or Z (where a preview starts), as aware UTC."""
    example = "e.g. 2026-11-01T01:30:00-04:00 or 2026-11-01T05:30:00Z"
    text = text.strip() if isinstance(text, str) else ""
    shown = repr(text if len(text) <= 40 else text[:40] + "...")
    match = _ISO_INSTANT.fullmatch(text)
    if match and not match["offset"]:
        raise ValidationError(f"{shown} has no UTC offset: add one, or Z for UTC ({example}).", code="naive_instant")
    if not match and _PLUS_AS_SPACE.fullmatch(text):
        raise ValidationError(
            f"{shown} has a space where its offset's '+' belongs: in a URL, send '+' as %2B, or use Z.",
            code="invalid_instant",
        )
    try:
        moment = datetime.fromisoformat(match[0].upper().replace(",", ".")) if match else None
    except ValueError:  # well-formed but not a real date or offset, such as 2026-02-30
        moment = None
    if moment is None:
        raise ValidationError(f"{shown} is not an ISO 8601 date and time ({example}).", code="invalid_instant")
    if not INSTANT_MIN <= moment < INSTANT_MAX:
        raise ValidationError(
            f"{shown} is out of range: give a moment from {INSTANT_MIN.year} to {INSTANT_MAX.year - 1}.",
            code="instant_out_of_range",
        )
    return moment.astimezone(UTC)


# --- validation --------------------------------------------------------------------------------


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
                f"A cron expression has 5 fields (minute hour day-of-month month day-of-week); got {len(fields)}.",
                code="invalid_cron",
            )
        for index, value in enumerate(fields):
            problem = _field_problem(index, value.upper(), [field.upper() for field in fields])
            if problem:
                raise ValidationError(f"The {CRON_FIELDS[index]} field {value!r} {problem}", code="invalid_cron")
    zone = zone_get(timezone_name)
    try:
        _wall_next(_cron_parsed(normalised), datetime.now(zone).replace(tzinfo=None))
    except CroniterBadDateError:
        raise ValidationError(
            f"The cron expression {normalised!r} never matches a real date.", code="invalid_cron"
        ) from None
    except (CroniterError, ValueError, KeyError, TypeError) as exc:
        raise ValidationError(
            f"Invalid cron expression {normalised!r}: {_cron_error_text(exc)}.", code="invalid_cron"
        ) from None
    return normalised


def _field_problem(index: int, value: str, fields: list[str]) -> str | None:
    """Why a field (upper case) is refused, completing "The <field> field '<value>' ...", or None.

    Besides croniter's non-standard extensions, this refuses what croniter accepts but reads
    differently from Vixie cron and cronsim: "5-5" (croniter: every minute), wrapping ranges
    such as "fri-sun", a start with a step in the day of week ("1/2": cronsim counts Sunday as
    7 there), 'L' anywhere but alone in the day of month, 'W', ranges of n-th weekdays, and an
    n-th weekday ORed with a day of month (croniter ANDs them).
    """
    bare = _NAMES.sub("", value)
    for token, label in NON_STANDARD_TOKENS.items():
        if token in bare:
            return f"uses {label}, which standard cron does not support."
    terms = value.split(",")
    if index == DAY_OF_MONTH:
        if any("L" in term and term != "L" for term in terms):
            return (
                "uses 'L' in a range, step or suffix; 'L' (the last day of the month) stands alone, "
                "as in 'L' or '1,15,L'."
            )
        if "W" in bare:
            return "uses 'W' (nearest weekday), which Vixie cron does not support."
    if index == DAY_OF_WEEK:
        if "L" in bare:
            return (
                "uses 'L' (a last weekday of the month), which Vixie cron does not support; use '#' "
                "(5#5) or 'L' in the day of month field."
            )
        if "#" in value:
            if not all(_NTH_WEEKDAY.match(term) for term in terms):
                return (
                    "mixes '#' (the n-th weekday of the month) with other days or ranges; list n-th "
                    "weekdays only, as in '1#1,5#3'."
                )
            day_of_month = fields[DAY_OF_MONTH]
            if day_of_month != "*" and not day_of_month.startswith("*"):
                return (
                    f"uses '#' (the n-th weekday of the month), which cannot be ORed with the day of "
                    f"month {day_of_month!r}: make the day of month '*', or start it with '*' so that "
                    f"both must match."
                )
    if len(terms) > 1 and "*" in terms:
        return "has '*' inside a list; use '*' alone."
    for term in terms:
        problem = _term_problem(index, term)
        if problem:
            return problem
    return None


def _term_problem(index: int, term: str) -> str | None:
    base, _, step = term.partition("/")
    if "-" in base:
        low, _, high = base.partition("-")
        low_value, high_value = _field_value(index, low), _field_value(index, high)
        if low_value is None or high_value is None:
            return None  # not numbers or names: croniter says what is wrong
        if low_value == high_value:
            return f"has the range {base!r} from a value to itself; write {low!r}."
        if low_value > high_value:
            return f"has the range {base!r}, which runs backwards; ranges go from low to high (list both ends instead)."
    elif step and index == DAY_OF_WEEK and base != "*":
        return f"has {term!r}, a start with a step; write it as a range, such as '{base}-7/{step}'."
    return None


def _field_value(index: int, text: str) -> int | None:
    if text.isdigit():
        return int(text)
    names = {MONTH: _MONTH_NAMES, DAY_OF_WEEK: _DAY_NAMES}.get(index, ())
    if text in names:
        return names.index(text) + (1 if index == MONTH else 0)
    return None


def _cron_error_text(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    if "out of range" in text:
        return "a value is out of range (minute 0-59, hour 0-23, day 1-31, month 1-12, weekday 0-7)"
    return text


# --- fire times --------------------------------------------------------------------------------


def cron_fields(expression: str) -> list[str]:
    """The five fields of a (valid, normalised) expression, a macro spelled out."""
    return CRON_MACRO_EXPANSIONS.get(expression, expression).split()


def cron_is_wildcard(expression: str) -> bool:
    """Whether the job keeps its cadence in real time across DST changes (minute or hour starts with '*')."""
    fields = cron_fields(expression)
    return fields[MINUTE].startswith("*") or fields[HOUR].startswith("*")


def cron_days_and(expression: str) -> bool:
    """Whether a day must match both day fields (either starts with '*') rather than either."""
    fields = cron_fields(expression)
    return fields[DAY_OF_MONTH].startswith("*") or fields[DAY_OF_WEEK].startswith("*")


@dataclass(frozen=True, slots=True)
class _ParsedCron:
    template: croniter  # evaluates on naive wall-clock times; copied for each look-up
    wildcard: bool


@functools.lru_cache(maxsize=4096)
def _cron_parsed(expression: str) -> _ParsedCron:
    """Parse once per process: jobs sharing an expression ask the same question at every claim (README, Performance)."""
    template = croniter(" ".join(cron_fields(expression)), datetime(2000, 1, 1), day_or=not cron_days_and(expression))
    return _ParsedCron(template=template, wildcard=cron_is_wildcard(expression))


def _wall_next(parsed: _ParsedCron, wall: datetime, inclusive: bool = False) -> datetime:
    """The first matching wall-clock time after `wall` (at or after it when `inclusive`).

    Naive datetimes: croniter then does plain calendar arithmetic, and this module alone decides
    what a wall-clock time means in the zone. Each call gets its own copy (claims run in threads).
    """
    iterator = copy.copy(parsed.template)
    iterator.set_current(wall - _TICK if inclusive else wall, force=True)
    return iterator.get_next(datetime)


def _offset_at(zone: ZoneInfo, timestamp: int) -> timedelta:
    return datetime.fromtimestamp(timestamp, zone).utcoffset()


def _offset_change(zone: ZoneInfo, start: datetime, end: datetime) -> datetime | None:
    """The first instant in (start, end] at which the zone's UTC offset differs from the one at
    `start`, or None. Offset changes fall on whole seconds."""
    offset = start.astimezone(zone).utcoffset()
    low = start
    while low < end:
        high = min(low + _OFFSET_CHECK_STEP, end)
        if high.astimezone(zone).utcoffset() != offset:
            before, after = math.floor(low.timestamp()), math.ceil(high.timestamp())
            while after - before > 1:
                middle = (before + after) // 2
                if _offset_at(zone, middle) == offset:
                    before = middle
                else:
                    after = middle
            return datetime.fromtimestamp(after, UTC)
        low = high
    return None


def _first_instant_at(zone: ZoneInfo, wall: datetime) -> datetime:
    """When a fixed job due at wall-clock time `wall` fires: its first occurrence, or, for a time
    skipped by a spring-forward change, the first instant after the gap."""
    instant = wall.replace(tzinfo=zone).astimezone(UTC)  # fold=0: the first of two occurrences
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    # In a gap, fold=0 reads the time with the offset before the change (landing after the gap)
    # and fold=1 with the one after it (landing before): the change lies in between.
    return _offset_change(zone, wall.replace(tzinfo=zone, fold=1).astimezone(UTC), instant) or instant


def _next_fixed(parsed: _ParsedCron, zone: ZoneInfo, after: datetime) -> datetime:
    """Each wall-clock time once: the first after `after` whose first occurrence is after it."""
    wall = after.astimezone(zone).replace(tzinfo=None)
    for _ in range(_MAX_SKIPPED_CANDIDATES):
        wall = _wall_next(parsed, wall)
        instant = _first_instant_at(zone, wall)
        if instant > after:  # not a repeated time whose first occurrence has passed
            return instant
    raise ValueError(f"No fire time found after {after.isoformat()}.")


def _next_wildcard(parsed: _ParsedCron, zone: ZoneInfo, after: datetime) -> datetime:
    """The first real minute after `after` whose wall-clock time matches.

    Between two offset changes wall time is real time plus a fixed offset, so the next match
    under the current offset is the answer unless an offset change comes first; then the search
    goes on from that change, under the new offset.
    """
    start, inclusive = after, False
    for _ in range(_MAX_SKIPPED_CANDIDATES):
        local = start.astimezone(zone)
        offset = local.utcoffset()
        wall = _wall_next(parsed, local.replace(tzinfo=None), inclusive)
        candidate = (wall - offset).replace(tzinfo=UTC)
        change = _offset_change(zone, start, candidate)
        if change is None:
            return candidate
        start, inclusive = change, True
    raise ValueError(f"No fire time found after {after.isoformat()}.")


def cron_next_fire_time(expression: str, timezone_name: str, after: datetime) -> datetime:
    """The first fire time strictly after `after`, as an aware UTC datetime."""
    return _cron_next_fire_time(expression, timezone_name, after.astimezone(UTC))


# Jobs sharing an expression and zone fire together, so a claim asks the same question many
# times over (every `0 * * * *` job at each hour); the answer never changes.
@functools.lru_cache(maxsize=8192)
def _cron_next_fire_time(expression: str, timezone_name: str, after_utc: datetime) -> datetime:
    parsed = _cron_parsed(expression)
    next_fire = _next_wildcard if parsed.wildcard else _next_fixed
    return next_fire(parsed, ZoneInfo(timezone_name), after_utc)


def cron_next_fire_times(expression: str, timezone_name: str, after: datetime, count: int) -> list[datetime]:
    times, current = [], after
    for _ in range(count):
        current = cron_next_fire_time(expression, timezone_name, current)
        times.append(current)
    return times


# --- the schedule in words ---------------------------------------------------------------------

_WEEKDAY_WORDS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_NTH_WORDS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _joined(words: list[str], conjunction: str) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {conjunction} {words[-1]}"


class _VixieDescriptor(ExpressionDescriptor):
    """cron-descriptor's words, with the day fields combined as Vixie cron combines them.

    cron-descriptor always joins a restricted day of month and day of week with "or"; when
    either field starts with '*' both must match, which reads "..., if it is a Monday". Weekday
    steps ("*/2") are named day by day, and a day-of-month step from '*' reads "every 2nd day of
    the month" (days 1, 3, 5, ...; not every other day across month ends).
    """

    def __init__(self, fields: list[str], options: Options):
        super().__init__(" ".join(fields), options)
        self._fields = fields
        self._expanded, self._nth = croniter.expand(" ".join(fields))
        both_restricted = fields[DAY_OF_MONTH] != "*" and fields[DAY_OF_WEEK] != "*"
        self._days_and = both_restricted and (
            fields[DAY_OF_MONTH].startswith("*") or fields[DAY_OF_WEEK].startswith("*")
        )

    def get_day_of_month_description(self) -> str:
        field = self._fields[DAY_OF_MONTH]
        base, _, step = field.partition("/")
        if base == "*" and step.isdigit() and int(step) > 1:
            return f", on every {_ordinal(int(step))} day of the month"
        terms = field.split(",")
        if "L" in terms and len(terms) > 1 and all(term.isdigit() for term in terms if term != "L"):
            days = sorted({int(term) for term in terms if term != "L"})
            return f", on day {_joined([str(day) for day in days] + ['the last day'], 'and')} of the month"
        return super().get_day_of_month_description()

    def get_day_of_week_description(self) -> str:
        weekdays, days_of_month = self._fields[DAY_OF_WEEK], self._fields[DAY_OF_MONTH]
        if weekdays == "*":
            return ""
        if days_of_month in ("*", "*/1"):  # any day of the month: the weekdays alone decide
            if days_of_month == "*" and "/" not in weekdays:
                return super().get_day_of_week_description()
            template, conjunction, article = ", only on {}", "and", False
        elif self._days_and:
            template, conjunction, article = ", if it is {}", "or", True
        elif "/" in weekdays:
            template, conjunction, article = ", or on {}", "and", False
        else:
            return super().get_day_of_week_description()
        phrase = self._weekdays(conjunction, article=article)
        return template.format(phrase) if phrase else ""

    def _weekdays(self, conjunction: str, *, article: bool) -> str:
        """The weekdays of the day-of-week field, Monday first, runs of three or more as ranges."""
        if self._nth:
            words = [
                f"the {_NTH_WORDS[nth]} {_WEEKDAY_WORDS[day]}"
                for day in sorted(self._nth, key=lambda day: (day - 1) % 7)
                for nth in sorted(self._nth[day])
            ]
            return f"{_joined(words, conjunction)} of the month"
        days = self._expanded[DAY_OF_WEEK]
        monday_first = sorted({(int(day) - 1) % 7 for day in (range(7) if "*" in days else days)})
        if len(monday_first) == 7:
            return ""  # every day of the week: no condition on it
        runs: list[list[int]] = []
        for position in monday_first:
            if runs and runs[-1][-1] == position - 1:
                runs[-1].append(position)
            else:
                runs.append([position])
        words = []
        for run in runs:
            names = [_WEEKDAY_WORDS[(position + 1) % 7] for position in run]
            words.extend([f"{names[0]} through {names[-1]}"] if len(names) >= 3 else names)
        phrase = _joined(words, conjunction)
        return f"a {phrase}" if article else phrase


@functools.lru_cache(maxsize=4096)
def cron_describe(expression: str) -> str:
    """The schedule in words, e.g. 'At 00:00, on every 2nd day of the month, if it is a Monday'.

    Remembered per expression: a page of jobs describes each row, and cron-descriptor takes a few
    milliseconds a call; a fleet has far fewer distinct expressions than jobs."""
    options = Options()
    options.use_24hour_time_format = True
    options.verbose = False
    try:
        return _VixieDescriptor(cron_fields(expression), options).get_description()
    except Exception:  # cron-descriptor and croniter raise their own assorted errors on odd input
        return expression

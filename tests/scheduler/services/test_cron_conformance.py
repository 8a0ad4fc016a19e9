"""Our cron fire times equal cronsim's: an independent evaluator, written to match Debian's cron.

Seeded, generated expressions (steps, ranges, stepped ranges, lists, names, macros, 'L', '#',
both day-field rules, wildcard and fixed jobs) x zones with daylight saving changes x start times
shortly before each change of 2026-2028; the first 30 fire times are compared as UTC instants.

cronsim 2.8 gets the wildcard rule wrong on two kinds of day, and only there: on a day whose
clocks move by 30 minutes (Australia/Lord_Howe) it steps hours from a wall-clock HH:00 and so
looks at HH:30 for the rest of the day, and on a day whose midnight does not exist
(America/Santiago) it answers with the nonexistent 00:MM. Vixie cron looks at every real
minute's wall-clock time. A disagreement on such a day is accepted only when our times equal a
scan of every real minute against cronsim's own calendar matching, and only on those days.
"""

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim, CronSimError
from django.core.exceptions import ValidationError

from scheduler.services.cron import cron_next_fire_times, cron_validate

SEED = 20261101
EXPRESSION_COUNT = 60
FIRES = 30
ZONES = [
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
    "Australia/Lord_Howe",  # clocks move by 30 minutes
    "America/Santiago",  # clocks move at midnight
    "Asia/Kolkata",  # no DST (UTC+05:30)
    "UTC",
]
YEARS = (2026, 2029)  # changes from 1 January 2026 up to 1 January 2029
LEADS = [timedelta(minutes=m) for m in (1, 7, 20, 55, 130, 300, 1400, 4000)]  # 1 min to ~3 days

# crontab(5): what the macros stand for; cronsim itself parses only the five-field form.
VIXIE_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


# --- the zones' changes --------------------------------------------------------------------------


def offset_changes(zone_name: str) -> list[datetime]:
    """Every instant in YEARS at which the zone's UTC offset changes, to the second."""
    zone = ZoneInfo(zone_name)
    moment, end = datetime(YEARS[0], 1, 1, tzinfo=UTC), datetime(YEARS[1], 1, 1, tzinfo=UTC)
    offset, changes = moment.astimezone(zone).utcoffset(), []
    while moment < end:
        later = moment + timedelta(hours=1)
        if later.astimezone(zone).utcoffset() != offset:
            low, high = moment, later
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                low, high = (middle, high) if middle.astimezone(zone).utcoffset() == offset else (low, middle)
            changes.append(high.replace(microsecond=0))
            offset = later.astimezone(zone).utcoffset()
        moment = later
    return changes


CHANGES = {zone: offset_changes(zone) for zone in ZONES}
# Zones without DST start at New York's changes, so they see the same calendar.
STARTING_POINTS = {zone: CHANGES[zone] or CHANGES["America/New_York"] for zone in ZONES}


def test_every_dst_zone_changes_twice_a_year():
    assert {zone: len(changes) for zone, changes in CHANGES.items()} == {
        "America/New_York": 6,
        "Europe/London": 6,
        "Australia/Sydney": 6,
        "Australia/Lord_Howe": 6,
        "America/Santiago": 6,
        "Asia/Kolkata": 0,
        "UTC": 0,
    }
    shifts = {
        (
            change.astimezone(ZoneInfo("Australia/Lord_Howe")).utcoffset()
            - (change - timedelta(seconds=1)).astimezone(ZoneInfo("Australia/Lord_Howe")).utcoffset()
        )
        for change in CHANGES["Australia/Lord_Howe"]
    }
    assert shifts == {timedelta(minutes=30), timedelta(minutes=-30)}


# --- generated expressions -----------------------------------------------------------------------


def _named(rng: random.Random, name: str) -> str:
    return rng.choice([name.lower(), name.upper(), name.capitalize()])


def _generic_field(rng: random.Random, low: int, high: int, steps: list[int], star: float) -> str:
    """'*', '*/n', a value, a list, a range, a stepped range, a start with a step, or a mixed list."""
    pick = rng.random()
    a = rng.randint(low, high - 2)
    b = rng.randint(a + 1, high)
    if pick < star:
        return "*"
    if pick < star + 0.2:
        return f"*/{rng.choice(steps)}"
    if pick < star + 0.45:
        return str(rng.randint(low, high))
    if pick < star + 0.6:
        return ",".join(map(str, sorted(rng.sample(range(low, high + 1), rng.randint(2, 3)))))
    if pick < star + 0.7:
        return f"{a}-{b}"
    if pick < star + 0.8:
        return f"{a}-{b}/{rng.choice(steps)}"
    if pick < star + 0.9:
        return f"{rng.randint(low, high)}/{rng.choice(steps)}"
    return rng.choice([f"*/{rng.choice(steps)},{rng.randint(low, high)}", f"{a}-{b},{rng.randint(low, high)}"])


def _day_of_month(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.55:
        return "*"
    if pick < 0.63:
        return f"*/{rng.choice([2, 3, 5, 7, 10, 15])}"
    if pick < 0.73:
        return str(rng.randint(1, 31) if rng.random() < 0.2 else rng.randint(1, 28))
    if pick < 0.78:
        return ",".join(map(str, sorted(rng.sample(range(1, 29), 2))))
    if pick < 0.83:
        first = rng.randint(1, 20)
        return f"{first}-{rng.randint(first + 1, 28)}"
    if pick < 0.87:
        first = rng.randint(1, 10)
        return f"{first}-{rng.randint(first + 5, 31)}/{rng.choice([2, 3, 7])}"
    if pick < 0.92:
        return "L"
    if pick < 0.95:
        return f"{rng.randint(1, 15)},L"
    return f"{rng.randint(1, 10)}/{rng.choice([2, 5, 10])}"


def _month(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.7:
        return "*"
    if pick < 0.78:
        return ",".join(_named(rng, MONTHS[m]) for m in sorted(rng.sample(range(12), 2)))
    if pick < 0.82:
        return str(rng.randint(1, 12))
    if pick < 0.87:
        first = rng.randint(0, 9)
        last = rng.randint(first + 1, 11)
        return rng.choice([f"{first + 1}-{last + 1}", f"{_named(rng, MONTHS[first])}-{_named(rng, MONTHS[last])}"])
    if pick < 0.92:
        return f"*/{rng.choice([2, 3, 4, 6])}"
    if pick < 0.96:
        return f"1-12/{rng.choice([2, 3])}"
    return f"{rng.randint(1, 6)}/{rng.choice([2, 3])}"


def _day_of_week(rng: random.Random) -> str:
    pick = rng.random()

    def day(number: int) -> str:  # 0-7, as a number or a name (7 only as a number)
        return str(number) if number == 7 or rng.random() < 0.5 else _named(rng, DAYS[number])

    if pick < 0.5:
        return "*"
    if pick < 0.65:
        return day(rng.randint(0, 7))
    if pick < 0.72:
        first = rng.randint(0, 5)
        return f"{day(first)}-{day(rng.randint(first + 1, 7))}"
    if pick < 0.79:
        return f"*/{rng.choice([2, 3, 5])}"
    if pick < 0.85:
        return ",".join(day(number) for number in sorted(rng.sample(range(7), rng.randint(2, 3))))
    if pick < 0.89:
        first = rng.randint(0, 3)
        return f"{first}-{rng.randint(first + 2, 7)}/{rng.choice([2, 3])}"
    return ",".join(f"{day(rng.randint(0, 7))}#{rng.randint(1, 5)}" for _ in range(rng.randint(1, 2)))


def generated_expression(rng: random.Random) -> str:
    if rng.random() < 0.06:
        return rng.choice(sorted(VIXIE_MACROS))
    minute = _generic_field(rng, 0, 59, [2, 3, 5, 7, 10, 15, 20, 30, 45], star=0.12)
    hour = _generic_field(rng, 0, 23, [2, 3, 4, 5, 6, 8, 12], star=0.3)
    day_of_month, month, day_of_week = _day_of_month(rng), _month(rng), _day_of_week(rng)
    if "#" in day_of_week and not day_of_month.startswith("*"):
        # An n-th weekday ORed with a day of month is refused (croniter ANDs them); keep the
        # day of month open or starting with '*'.
        day_of_month = rng.choice(["*", "*/2", "*/3"])
    return f"{minute} {hour} {day_of_month} {month} {day_of_week}"


def _generate():
    rng = random.Random(SEED)
    accepted, refused = [], []
    while len(accepted) < EXPRESSION_COUNT:
        expression = generated_expression(rng)
        if expression in accepted:
            continue
        try:
            cron_validate(expression)
        except ValidationError as exc:
            refused.append((expression, exc.messages[0]))
            continue
        accepted.append(expression)
    cases = [
        (expression, zone, change - rng.choice(LEADS) + timedelta(seconds=rng.choice([0, 0, 0, 17])))
        for expression in accepted
        for zone in ZONES
        for change in STARTING_POINTS[zone]
    ]
    return accepted, refused, cases


EXPRESSIONS, REFUSED, CASES = _generate()


def test_the_generator_covers_every_construct():
    fields = [VIXIE_MACROS.get(e, e).split() for e in EXPRESSIONS]
    assert len(CASES) >= 2000
    assert any(e.startswith("@") for e in EXPRESSIONS), "macros"
    assert any(f[0].startswith("*/") for f in fields) and any("/" in f[1] for f in fields), "steps"
    assert any("-" in f[0] and "/" not in f[0] for f in fields), "ranges"
    assert any("-" in v and "/" in v for f in fields for v in f), "stepped ranges"
    assert any("," in f[0] for f in fields), "lists"
    assert any(any(n in f[3].upper() for n in MONTHS) for f in fields), "month names"
    assert any(any(n in f[4].upper() for n in DAYS) for f in fields), "weekday names"
    assert any("L" in f[2] for f in fields) and any("#" in f[4] for f in fields), "L and #"
    both = [f for f in fields if f[2] != "*" and f[4] != "*"]
    assert any(f[2].startswith("*") or f[4].startswith("*") for f in both), "day fields ANDed"
    assert any(not (f[2].startswith("*") or f[4].startswith("*")) for f in both), "day fields ORed"
    wildcard = [f for f in fields if f[0].startswith("*") or f[1].startswith("*")]
    assert 10 <= len(wildcard) <= len(fields) - 10, "wildcard and fixed jobs"


def test_what_we_refuse_cronsim_refuses_too():
    """The generator writes only constructs both evaluators accept; what validation still
    refuses (a date that never comes, such as the 31st of a 30-day month) cronsim refuses too."""
    for expression, reason in REFUSED:
        assert "never matches" in reason, (expression, reason)
        with pytest.raises((CronSimError, StopIteration)):
            next(CronSim(VIXIE_MACROS.get(expression, expression), datetime(2026, 1, 1)))


# --- the comparison ------------------------------------------------------------------------------


def cronsim_fire_times(expression: str, zone: str, start: datetime, count: int) -> list[datetime]:
    iterator = CronSim(VIXIE_MACROS.get(expression, expression), start.astimezone(ZoneInfo(zone)))
    times = []
    for moment in iterator:
        times.append(moment.astimezone(UTC))
        if len(times) == count:
            break
    return times


def real_minute_scan(expression: str, zone_name: str, start: datetime, end: datetime) -> list[datetime]:
    """Vixie cron's wildcard rule done the slow way: every real minute in (start, end] whose
    wall-clock time cronsim's calendar (naive, without DST) matches."""
    zone = ZoneInfo(zone_name)
    first_wall = start.astimezone(zone).replace(tzinfo=None) - timedelta(days=1)
    last_wall = end.astimezone(zone).replace(tzinfo=None) + timedelta(days=1)
    walls = set()
    for wall in CronSim(VIXIE_MACROS.get(expression, expression), first_wall):
        if wall > last_wall:
            break
        walls.add(wall)
    moment = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    times = []
    while moment <= end:
        if moment.astimezone(zone).replace(tzinfo=None) in walls:
            times.append(moment)
        moment += timedelta(minutes=1)
    return times


@pytest.mark.parametrize(
    ("expression", "zone", "start"),
    [
        ("*/15 * * * *", "America/New_York", datetime(2026, 11, 1, 5, 20, tzinfo=UTC)),
        ("0 * * * *", "Europe/London", datetime(2026, 10, 24, 23, 0, tzinfo=UTC)),
        ("*/20 2 * * *", "America/New_York", datetime(2026, 3, 7, 12, 0, tzinfo=UTC)),
        ("*/10 1 * * *", "Australia/Lord_Howe", datetime(2026, 4, 4, 12, 0, tzinfo=UTC)),
    ],
)
def test_the_real_minute_scan_agrees_with_cronsim_away_from_its_defects(expression, zone, start):
    expected = cronsim_fire_times(expression, zone, start, FIRES)
    assert real_minute_scan(expression, zone, start, expected[-1]) == expected


def is_wildcard(expression: str) -> bool:
    minute, hour = VIXIE_MACROS.get(expression, expression).split()[:2]
    return minute.startswith("*") or hour.startswith("*")


def on_a_change_day(moment: datetime, zone: str) -> bool:
    tz = ZoneInfo(zone)
    return moment.astimezone(tz).date() in {change.astimezone(tz).date() for change in CHANGES[zone]}


def compare(expression: str, zone: str, start: datetime) -> str | None:
    """None when we agree with cronsim (or with the real-minute scan on a day cronsim gets
    wrong, returned as 'cronsim-defect'), else what differs."""
    ours = cron_next_fire_times(expression, zone, start, FIRES)
    theirs = cronsim_fire_times(expression, zone, start, FIRES)
    if ours == theirs:
        return None
    index = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
    tz = ZoneInfo(zone)
    where = (
        f"{expression!r} in {zone} after {start.astimezone(tz).isoformat()}: fire {index} is "
        f"{ours[index].astimezone(tz).isoformat() if index < len(ours) else '-'} here, "
        f"{theirs[index].astimezone(tz).isoformat() if index < len(theirs) else '-'} in cronsim"
    )
    first_difference = min(t[index] for t in (ours, theirs) if index < len(t))
    if is_wildcard(expression) and on_a_change_day(first_difference, zone):
        if ours == real_minute_scan(expression, zone, start, ours[-1]):
            return "cronsim-defect"
    return where


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_fire_times_equal_cronsim(expression, record_property):
    outcomes = [compare(expression, zone, start) for e, zone, start in CASES if e == expression]
    mismatches = [outcome for outcome in outcomes if outcome not in (None, "cronsim-defect")]
    record_property("cronsim_defect_days", outcomes.count("cronsim-defect"))
    assert not mismatches, "\n".join(mismatches[:10])


# --- extensions both evaluators accept mean the same ------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "0 0 L * *",  # the last day of the month
        "30 12 1,15,L * *",
        "0 0 L 2 *",
        "0 0 L * 5",  # ORed: the last day, and every Friday
        "0 0 L * */2",  # ANDed: the last day when it is Sun, Tue, Thu or Sat
        "0 0 * * 5#3",  # the third Friday
        "0 9 * * MON#1,fri#5",
        "0 0 */2 * 1#2",  # ANDed: the second Monday when it is an odd day
        "0 0 * * sun#1",
        "0 0 * * 7#2",
        "0 8 * jan-mar,Jul MON-fri",
        "0 0 * DEC/3 *",
        "*/10 9-17/2 * * Sat,SUN",
        "0 0 */2 * 1",
        "0 0 1,15 * */5",
        "*/5 * 1-7 * mon",
        "0 0 * * 5-7",
        "0 0 * * 1-7/2",
        "0 0 * * 0-7/2",
        *VIXIE_MACROS,
    ],
)
@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_extensions_mean_what_cronsim_says(expression, zone):
    cron_validate(expression, zone)
    for change in CHANGES.get(zone) or [datetime(2026, 3, 8, 7, tzinfo=UTC)]:
        start = change - timedelta(days=2)
        assert cron_next_fire_times(expression, zone, start, 40) == cronsim_fire_times(expression, zone, start, 40)

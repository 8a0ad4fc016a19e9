"""The engine fires cron jobs exactly at the times the preview shows, in every timezone, across DST.

Fixed jobs (minute and hour fields fixed) fire once per wall-clock time; wildcard jobs (minute or
hour starting with '*') keep their cadence in real time, in both copies of a repeated hour.

The engine is simulated with a fake clock: wake at the earliest persisted next_run_time, call
runs_claim with that `now`, record the scheduled times of the runs it creates, repeat. No test
waits for real time.
"""

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Min

from scheduler.models import ExecutionStatus, JobExecution, JobLease, ScheduledJob
from scheduler.services.claims import runs_claim
from scheduler.services.cron import cron_is_wildcard
from scheduler.services.schedules import job_next_fire_time, job_upcoming_fire_times
from tests.factories import CronJobFactory

pytestmark = pytest.mark.django_db

FIRES = 30
INSTANCE = "agreement-test-instance"
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "Pacific/Chatham"]

# The 2026 daylight-saving changes, as UTC instants: spring forward, fall back.
DST_2026 = {
    "Europe/Paris": {
        "spring": datetime(2026, 3, 29, 1, tzinfo=UTC),
        "fall": datetime(2026, 10, 25, 1, tzinfo=UTC),
    },
    "America/New_York": {
        "spring": datetime(2026, 3, 8, 7, tzinfo=UTC),
        "fall": datetime(2026, 11, 1, 6, tzinfo=UTC),
    },
    "Australia/Sydney": {
        "spring": datetime(2026, 10, 3, 16, tzinfo=UTC),
        "fall": datetime(2026, 4, 4, 16, tzinfo=UTC),
    },
    "Pacific/Chatham": {
        "spring": datetime(2026, 9, 26, 14, tzinfo=UTC),
        "fall": datetime(2026, 4, 4, 14, tzinfo=UTC),
    },
}
# Zones without DST run over the same dates, so every zone sees the same calendar.
NO_DST_DATES = {"spring": datetime(2026, 3, 29, 1, tzinfo=UTC), "fall": datetime(2026, 10, 25, 1, tzinfo=UTC)}

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
# (expression, how long before a DST change the simulation starts: about a third of the fires
# come before the change). Each expression runs in one zone (they take turns), so every zone
# gets four or five of them, alternately around its spring and its fall change.
EXPRESSIONS = [
    ("* * * * *", timedelta(minutes=10)),
    ("*/15 * * * *", 3 * HOUR),
    ("0 * * * *", 10 * HOUR),
    ("@hourly", 10 * HOUR),
    ("0 */2 * * *", 20 * HOUR),
    ("0 1-4 * * *", 3 * DAY),
    ("*/20 2 * * *", 4 * DAY),
    ("0 6-18/3 * * *", 2 * DAY),
    ("@daily", 10 * DAY),
    ("30 2 * * *", 10 * DAY),
    ("30 1 * * *", 10 * DAY),
    ("0 3 * * *", 10 * DAY),
    ("45 2 * * *", 10 * DAY),
    ("59 23 * * *", 10 * DAY),
    ("0 9 * * MON-FRI", 14 * DAY),
    ("30 2 * * 7", 70 * DAY),
    ("0 12 * * 0,6", 35 * DAY),
    ("0 22 * * SUN", 70 * DAY),
    ("@weekly", 70 * DAY),
    ("0 0 13 * 5", 50 * DAY),
    ("0 4 1-7 * 1", 60 * DAY),
    ("0 0 1,15 * *", 150 * DAY),
    ("15 10 L * *", 300 * DAY),
    ("45 23 31 * *", 500 * DAY),
    ("0 0 * JAN,JUL *", 100 * DAY),
    ("@monthly", 300 * DAY),
]


def change_of(zone: str, kind: str) -> datetime:
    return DST_2026.get(zone, NO_DST_DATES)[kind]


def simulate_engine(jobs, *, fires: int, lag: timedelta = timedelta(0)) -> dict[int, list[datetime]]:
    """Wake at the earliest next_run_time (+ `lag`), claim, repeat; return each job's fired times.

    Runs finish at once (their leases are dropped), so max_instances never holds one back; a job
    leaves the schedule after `fires` runs. Only these jobs are on the schedule.
    """
    fired: dict[int, list[datetime]] = defaultdict(list)
    remaining = {job.pk for job in jobs}
    ScheduledJob.objects.exclude(pk__in=remaining).update(is_enabled=False, next_run_time=None)
    for _ in range(fires * len(jobs)):
        if not remaining:
            break
        wake = ScheduledJob.objects.schedulable().aggregate(t=Min("next_run_time"))["t"]
        for run in runs_claim(instance_id=INSTANCE, now=wake + lag):
            fired[run.job_id].append(run.scheduled_time)
            if len(fired[run.job_id]) == fires:
                remaining.discard(run.job_id)
                ScheduledJob.objects.filter(pk=run.job_id).update(is_enabled=False, next_run_time=None)
        JobLease.objects.all().delete()
    assert not remaining, "every claim must fire at least one run"
    assert set(JobExecution.objects.values_list("status", flat=True)) == {ExecutionStatus.PENDING}, (
        "no run was skipped or missed"
    )
    assert JobExecution.objects.count() == fires * len(jobs)
    return fired


def job_starting_after(expression: str, zone: str, start: datetime) -> ScheduledJob:
    """Create a cron job, then set its next run to its first fire time after `start` (the fake now)."""
    job = CronJobFactory(cron_expression=expression, timezone=zone)
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=job_next_fire_time(job, start))
    job.refresh_from_db()
    return job


def local(times, zone: str) -> list[datetime]:
    return [t.astimezone(ZoneInfo(zone)) for t in times]


def is_second_occurrence(moment: datetime) -> bool:
    """A wall-clock time that a fall-back change repeats, at its second occurrence."""
    return moment.fold == 1 and moment.replace(fold=0).utcoffset() != moment.utcoffset()


def assert_each_wall_time_fires_once(times, zone: str) -> None:
    walls = [moment.replace(tzinfo=None) for moment in local(times, zone)]
    assert len(set(walls)) == len(walls), f"a wall-clock time fired twice in {zone}: {walls}"
    assert not [m for m in local(times, zone) if is_second_occurrence(m)], "fired at a repeated time"
    assert times == sorted(times) and len(set(times)) == len(times)


def assert_fires_in_real_time(times, zone: str) -> None:
    """A wildcard job: strictly increasing instants; a wall-clock time fires twice only when a
    fall-back change repeats it, once in each copy."""
    assert times == sorted(times) and len(set(times)) == len(times)
    by_wall = defaultdict(list)
    for moment in local(times, zone):
        by_wall[moment.replace(tzinfo=None, fold=0)].append(moment)
    for wall, moments in by_wall.items():
        if len(moments) > 1:
            assert [m.fold for m in moments] == [0, 1] and is_second_occurrence(moments[1]), wall


def assert_follows_the_dst_rule(times, expression: str, zone: str) -> None:
    if cron_is_wildcard(expression):
        assert_fires_in_real_time(times, zone)
    else:
        assert_each_wall_time_fires_once(times, zone)


def test_the_dst_table_matches_the_zone_database():
    for zone, changes in DST_2026.items():
        tz = ZoneInfo(zone)
        for kind, instant in changes.items():
            before = (instant - timedelta(seconds=1)).astimezone(tz).utcoffset()
            after = instant.astimezone(tz).utcoffset()
            assert (after > before) == (kind == "spring"), f"{zone} {kind}"


@pytest.mark.parametrize("zone", ZONES)
def test_engine_fire_times_equal_the_preview(zone):
    """Each expression, around a DST change of its zone: what the engine ran == the preview."""
    jobs, previews = [], {}
    for index, (expression, lead) in enumerate(EXPRESSIONS):
        if ZONES[index % len(ZONES)] != zone:
            continue
        change = change_of(zone, "spring" if (index // len(ZONES)) % 2 == 0 else "fall")
        job = job_starting_after(expression, zone, change - lead)
        previews[job.pk] = job_upcoming_fire_times(job, FIRES)
        jobs.append(job)

    fired = simulate_engine(jobs, fires=FIRES, lag=timedelta(seconds=1))

    for job in jobs:
        assert fired[job.pk] == previews[job.pk], f"{job.cron_expression!r} in {zone}"
        assert_follows_the_dst_rule(fired[job.pk], job.cron_expression, zone)


# --- standard cron semantics, checked against hand-written calendars --------------------------


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


CALENDARS = [
    pytest.param(
        "0 0 13 * 5",
        utc(2026, 2, 1),
        # day-of-month OR day-of-week: every Friday and every 13th (March 13th is both)
        [
            utc(2026, 2, 6),
            utc(2026, 2, 13),
            utc(2026, 2, 20),
            utc(2026, 2, 27),
            utc(2026, 3, 6),
            utc(2026, 3, 13),
            utc(2026, 3, 20),
            utc(2026, 3, 27),
            utc(2026, 4, 3),
            utc(2026, 4, 10),
            utc(2026, 4, 13),
        ],
        id="day-of-month-or-day-of-week",
    ),
    pytest.param(
        "30 8 * * 7",
        utc(2026, 1, 1),
        [utc(2026, 1, 4, 8, 30), utc(2026, 1, 11, 8, 30), utc(2026, 1, 18, 8, 30)],
        id="weekday-7-is-sunday",
    ),
    pytest.param(
        "15 10 L * *",
        utc(2026, 1, 1),
        [utc(2026, 1, 31, 10, 15), utc(2026, 2, 28, 10, 15), utc(2026, 3, 31, 10, 15), utc(2026, 4, 30, 10, 15)],
        id="last-day-of-month",
    ),
    pytest.param(
        "0 6-18/6 * * MON-FRI",
        utc(2026, 1, 9, 7),
        [utc(2026, 1, 9, 12), utc(2026, 1, 9, 18), utc(2026, 1, 12, 6), utc(2026, 1, 12, 12)],
        id="range-step-and-weekday-names",
    ),
    pytest.param(
        "@hourly",
        utc(2026, 1, 1, 10, 30),
        [utc(2026, 1, 1, 11), utc(2026, 1, 1, 12)],
        id="hourly-macro",
    ),
]


@pytest.mark.parametrize(("expression", "start", "expected"), CALENDARS)
def test_engine_follows_standard_cron(expression, start, expected):
    job = job_starting_after(expression, "UTC", start)
    fired = simulate_engine([job], fires=len(expected))
    assert fired[job.pk] == expected


def test_engine_follows_the_job_timezone():
    job = job_starting_after("0 9 * * *", "Asia/Kolkata", utc(2026, 6, 1))
    fired = simulate_engine([job], fires=3)
    assert fired[job.pk] == [utc(2026, 6, 1, 3, 30), utc(2026, 6, 2, 3, 30), utc(2026, 6, 3, 3, 30)]


# --- daylight saving time -----------------------------------------------------------------------

# (zone, change, a daily wall time in the gap/overlap, a wildcard job firing three times an hour
# inside it; its fixed twin "0,20,40 <hour> * * *" names the same three wall times)
DST_CASES = [
    ("Europe/Paris", "spring", time(2, 30), "*/20 2 * * *"),
    ("Europe/Paris", "fall", time(2, 30), "*/20 2 * * *"),
    ("America/New_York", "spring", time(2, 30), "*/20 2 * * *"),
    ("America/New_York", "fall", time(1, 30), "*/20 1 * * *"),
    ("Australia/Sydney", "spring", time(2, 30), "*/20 2 * * *"),
    ("Australia/Sydney", "fall", time(2, 30), "*/20 2 * * *"),
    ("Pacific/Chatham", "spring", time(3, 0), "*/20 3 * * *"),
    ("Pacific/Chatham", "fall", time(3, 0), "*/20 3 * * *"),
]
DST_FIRES = 12


def expected_daily(wall: time, zone: str, first_day: date, count: int, change: datetime) -> list[datetime]:
    """The rule, computed from the zone database: a skipped time fires at the first instant after
    the gap (the change itself); a repeated time fires at its first occurrence (fold=0)."""
    tz, times = ZoneInfo(zone), []
    for offset in range(count):
        moment = datetime.combine(first_day + timedelta(days=offset), wall, tzinfo=tz)
        as_utc = moment.astimezone(UTC)
        exists = as_utc.astimezone(tz).replace(tzinfo=None) == moment.replace(tzinfo=None)
        times.append(as_utc if exists else change)
    return times


@pytest.mark.parametrize(
    ("zone", "kind", "wall", "window_expression"),
    DST_CASES,
    ids=[f"{zone}-{kind}" for zone, kind, _, _ in DST_CASES],
)
def test_dst_changes_follow_the_rule(zone, kind, wall, window_expression):
    change = change_of(zone, kind)
    tz = ZoneInfo(zone)
    fixed_window_expression = "0,20,40 " + window_expression.split(" ", 1)[1]
    daily = job_starting_after(f"{wall.minute} {wall.hour} * * *", zone, change - 5 * DAY)
    window = job_starting_after(window_expression, zone, change - 2 * DAY)
    fixed_window = job_starting_after(fixed_window_expression, zone, change - 2 * DAY)
    jobs = (daily, window, fixed_window)
    previews = {job.pk: job_upcoming_fire_times(job, DST_FIRES) for job in jobs}

    fired = simulate_engine(list(jobs), fires=DST_FIRES)

    for job in jobs:
        assert fired[job.pk] == previews[job.pk], job.cron_expression
        assert_follows_the_dst_rule(fired[job.pk], job.cron_expression, zone)

    # The daily job fires once on every local day, by the rule, and never twice in a day.
    first_day = fired[daily.pk][0].astimezone(tz).date()
    assert fired[daily.pk] == expected_daily(wall, zone, first_day, DST_FIRES, change)
    days = [moment.date() for moment in local(fired[daily.pk], zone)]
    assert days == [first_day + timedelta(days=n) for n in range(DST_FIRES)]

    change_day = change.astimezone(tz).date()
    on_change_day = {
        job.pk: [m for m in local(fired[job.pk], zone) if m.date() == change_day] for job in (window, fixed_window)
    }
    summer_offset = (change - timedelta(seconds=1)).astimezone(tz).utcoffset()
    if kind == "spring":
        # The fixed job: the three skipped wall times fire once, together, at the first instant
        # after the gap. The wildcard job: those times never happen, so it does not fire.
        assert [m.astimezone(UTC) for m in on_change_day[fixed_window.pk]] == [change]
        assert change in fired[daily.pk]
        assert on_change_day[window.pk] == []
    else:
        # The fixed job: the three wall times fire once each, at their first occurrence.
        fixed = on_change_day[fixed_window.pk]
        assert len(fixed) == 3
        assert all(m.astimezone(UTC) < change for m in fixed)
        assert all(m.utcoffset() == summer_offset for m in fixed)
        # The wildcard job: in both copies of the repeated hour, three before the change and
        # three after it, each wall time twice.
        wildcard = on_change_day[window.pk]
        assert len(wildcard) == 6
        assert [m.astimezone(UTC) < change for m in wildcard] == [True] * 3 + [False] * 3
        assert [m.replace(tzinfo=None, fold=0) for m in wildcard[:3]] == [
            m.replace(tzinfo=None, fold=0) for m in wildcard[3:]
        ]


@pytest.mark.parametrize(("zone", "kind"), [("America/New_York", "fall"), ("Europe/Paris", "spring")])
def test_hourly_job_across_a_change_fires_every_real_hour(zone, kind):
    change = change_of(zone, kind)
    job = job_starting_after("0 * * * *", zone, change - 4 * HOUR)
    preview = job_upcoming_fire_times(job, 8)
    fired = simulate_engine([job], fires=8)[job.pk]
    assert fired == preview
    assert_fires_in_real_time(fired, zone)
    # A wildcard job keeps its cadence in real time: spring's missing hour is simply absent, and
    # fall's repeated hour fires in both copies.
    assert {later - earlier for earlier, later in zip(fired, fired[1:])} == {HOUR}
    walls = [moment.replace(tzinfo=None, fold=0) for moment in local(fired, zone)]
    assert len(set(walls)) == len(walls) - (1 if kind == "fall" else 0)

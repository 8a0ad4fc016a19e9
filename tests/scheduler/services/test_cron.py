"""Tests of cron expressions: validation, next fire times (DST included), standard semantics, wording."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from scheduler.services.cron import (
    cron_describe,
    cron_next_fire_time,
    cron_next_fire_times,
    cron_validate,
    zone_get,
)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- timezones -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["UTC", "Europe/Paris", "America/New_York", "Australia/Sydney", "Asia/Kathmandu"])
def test_zone_get_accepts_iana_names(name):
    assert zone_get(name) == ZoneInfo(name)


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "europe/paris", "+02:00", "CEST", None, 5])
def test_zone_get_refuses_anything_else(name):
    with pytest.raises(ValidationError, match="Unknown timezone"):
        zone_get(name)


# --- cron_validate ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression, normalised",
    [
        ("* * * * *", "* * * * *"),
        ("0 2 * * *", "0 2 * * *"),
        ("  0   2 *  * *  ", "0 2 * * *"),
        ("\t0 2 * * *\n", "0 2 * * *"),
        ("*/5 9-17 * * 1-5", "*/5 9-17 * * 1-5"),
        ("0,15,30,45 * * * *", "0,15,30,45 * * * *"),
        ("0 0 1 * mon", "0 0 1 * mon"),
        ("0 0 * * 7", "0 0 * * 7"),
        ("0 0 * * 0-7", "0 0 * * 0-7"),
        ("0 0 * JAN,JUL MON-FRI", "0 0 * JAN,JUL MON-FRI"),
        # Names containing the letters of croniter's extensions (H, R) are plain names.
        ("0 0 * MAR,APR THU,FRI", "0 0 * MAR,APR THU,FRI"),
        ("0 0 * * sat,sun", "0 0 * * sat,sun"),
        ("0 0 29 2 *", "0 0 29 2 *"),
        ("0 0 31 * *", "0 0 31 * *"),
        ("0 0 30 2 mon", "0 0 30 2 mon"),  # never the 30th of February, but every Monday of it
        ("@yearly", "@yearly"),
        ("@annually", "@annually"),
        ("@monthly", "@monthly"),
        ("@weekly", "@weekly"),
        ("@daily", "@daily"),
        ("@midnight", "@midnight"),
        ("@hourly", "@hourly"),
        ("@Daily", "@daily"),
    ],
)
def test_cron_validate_accepts_standard_cron_and_normalises_it(expression, normalised):
    assert cron_validate(expression) == normalised


@pytest.mark.parametrize(
    "expression, fragment",
    [
        (None, "required"),
        ("", "required"),
        ("   ", "required"),
        ("* * * *", "got 4"),
        ("* * * * * *", "got 6"),
        ("0", "got 1"),
        ("60 * * * *", "out of range"),
        ("0 24 * * *", "out of range"),
        ("0 0 0 * *", "out of range"),
        ("0 0 32 * *", "out of range"),
        ("0 0 * 0 *", "out of range"),
        ("0 0 * 13 *", "out of range"),
        ("0 0 * * 8", "out of range"),
        ("1-60 * * * *", "Invalid cron"),
        ("abc * * * *", "Invalid cron"),
        ("0 0 * FOO *", "Invalid cron"),
        ("*/0 * * * *", "Invalid cron"),
        ("-1 * * * *", "Invalid cron"),
        ("0 ? * * *", "'?'"),
        ("0 0 ? * 1", "'?'"),
        ("H * * * *", "hashed"),
        ("H/15 * * * *", "hashed"),
        ("R * * * *", "random"),
        ("@reboot", "Unknown cron macro"),
        ("@every", "Unknown cron macro"),
        ("0 0 30 2 *", "never matches"),
        ("0 0 31 2 *", "never matches"),
        ("0 0 31 4 *", "never matches"),
    ],
)
def test_cron_validate_refuses_with_a_reason(expression, fragment):
    with pytest.raises(ValidationError) as exc:
        cron_validate(expression)
    assert fragment in exc.value.messages[0]


@pytest.mark.parametrize(
    "expression, field, fragment",
    [
        # croniter accepts these but reads them differently from Vixie cron and cronsim.
        ("5-5 * * * *", "minute field '5-5'", "write '5'"),  # croniter: every minute
        ("0 0 * * 1-1", "day of week field '1-1'", "from a value to itself"),
        ("0 0 * jan-jan *", "month field 'jan-jan'", "from a value to itself"),
        ("0 22-2 * * *", "hour field '22-2'", "runs backwards"),  # croniter wraps around midnight
        ("0 0 * * fri-sun", "day of week field 'fri-sun'", "runs backwards"),
        ("0 0 * DEC-JAN *", "month field 'DEC-JAN'", "runs backwards"),
        ("0 0 * * 1/2", "day of week field '1/2'", "'1-7/2'"),  # cronsim counts Sunday as 7 here
        ("0 0 * * mon/2", "day of week field 'mon/2'", "a start with a step"),
        ("0 0 1-L * *", "day of month field '1-L'", "'L' (the last day of the month) stands alone"),
        ("0 0 LW * *", "day of month field 'LW'", "stands alone"),
        ("0 0 15W * *", "day of month field '15W'", "'W' (nearest weekday)"),
        ("0 0 * * 5L", "day of week field '5L'", "'L' (a last weekday of the month)"),
        ("0 0 * * L5", "day of week field 'L5'", "'L' (a last weekday of the month)"),
        ("0 0 * * MON-FRI#2", "day of week field 'MON-FRI#2'", "mixes '#'"),
        ("0 0 * * 1,5#3", "day of week field '1,5#3'", "mixes '#'"),
        ("0 0 1 * 5#3", "day of week field '5#3'", "cannot be ORed with the day of month '1'"),
        ("0 0 1,* * 1", "day of month field '1,*'", "'*' inside a list"),
        ("*,5 * * * *", "minute field '*,5'", "'*' inside a list"),
    ],
)
def test_cron_validate_refuses_what_croniter_and_vixie_cron_read_differently(expression, field, fragment):
    with pytest.raises(ValidationError) as exc:
        cron_validate(expression)
    message = exc.value.messages[0]
    assert message.startswith(f"The {field} ") and fragment in message, message


@pytest.mark.parametrize(
    "expression",
    [
        "0 0 L * *",
        "0 0 1,15,L * *",
        "0 0 * * 5#3",
        "0 0 * * fri#5,MON#1",
        "0 0 */2 * 1#2",
        "0 0 * * 5-7",
        "0 0 * * 1-7/2",
        "*/10 9-17/2 * * Sat,SUN",
        "10/5 * * * *",
        "0 0 * jan/3 *",
        "0 0 * DEC/3 *",
    ],
)
def test_cron_validate_accepts_what_both_evaluators_read_alike(expression):
    assert cron_validate(expression) == expression


def test_cron_validate_names_the_field_holding_a_non_standard_token():
    with pytest.raises(ValidationError) as exc:
        cron_validate("0 0 ? * MON")
    assert "day of month" in exc.value.messages[0]


def test_cron_validate_checks_the_timezone():
    assert cron_validate("0 2 * * *", "Europe/Paris") == "0 2 * * *"
    with pytest.raises(ValidationError, match="Unknown timezone"):
        cron_validate("0 2 * * *", "Nowhere/City")


# --- cron_next_fire_time ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression, zone, after, expected",
    [
        ("* * * * *", "UTC", utc(2026, 1, 1, 10, 7, 30), [utc(2026, 1, 1, 10, 8), utc(2026, 1, 1, 10, 9)]),
        (
            "*/15 * * * *",
            "UTC",
            utc(2026, 1, 1, 10, 7),
            [utc(2026, 1, 1, 10, 15), utc(2026, 1, 1, 10, 30), utc(2026, 1, 1, 10, 45), utc(2026, 1, 1, 11, 0)],
        ),
        ("0 */6 * * *", "UTC", utc(2026, 1, 1, 5, 0), [utc(2026, 1, 1, 6), utc(2026, 1, 1, 12), utc(2026, 1, 1, 18)]),
        ("30 4 1,15 * *", "UTC", utc(2026, 1, 1, 5, 0), [utc(2026, 1, 15, 4, 30), utc(2026, 2, 1, 4, 30)]),
        ("0 0 * jan,jul *", "UTC", utc(2026, 1, 31, 1, 0), [utc(2026, 7, 1), utc(2026, 7, 2)]),
        ("0 0 29 2 *", "UTC", utc(2026, 1, 1), [utc(2028, 2, 29), utc(2032, 2, 29)]),
        ("0 0 31 * *", "UTC", utc(2026, 1, 31, 12), [utc(2026, 3, 31), utc(2026, 5, 31)]),
        ("5 4 * * sun", "UTC", utc(2026, 1, 1), [utc(2026, 1, 4, 4, 5), utc(2026, 1, 11, 4, 5)]),
        # Evaluated in the job's zone, returned in UTC.
        ("0 2 * * *", "Europe/Paris", utc(2026, 1, 10, 12), [utc(2026, 1, 11, 1), utc(2026, 1, 12, 1)]),
        ("0 2 * * *", "Europe/Paris", utc(2026, 7, 10, 12), [utc(2026, 7, 11, 0), utc(2026, 7, 12, 0)]),
        # Friday 2 January 2026, after 09:00 in India: next is Monday.
        ("0 9 * * 1-5", "Asia/Kolkata", utc(2026, 1, 2, 12), [utc(2026, 1, 5, 3, 30), utc(2026, 1, 6, 3, 30)]),
        ("0 0 * * *", "Asia/Kathmandu", utc(2026, 1, 1), [utc(2026, 1, 1, 18, 15), utc(2026, 1, 2, 18, 15)]),
        ("0 22 * * 1-5", "America/Los_Angeles", utc(2026, 1, 2, 12), [utc(2026, 1, 3, 6), utc(2026, 1, 6, 6)]),
        # Midnight on 1 January in Tokyo is still the previous year in UTC.
        ("0 0 1 1 *", "Asia/Tokyo", utc(2026, 6, 1), [utc(2026, 12, 31, 15), utc(2027, 12, 31, 15)]),
    ],
)
def test_cron_next_fire_times(expression, zone, after, expected):
    assert cron_next_fire_times(expression, zone, after, len(expected)) == expected
    assert cron_next_fire_time(expression, zone, after) == expected[0]


def test_next_fire_time_is_strictly_after():
    assert cron_next_fire_time("0 2 * * *", "UTC", utc(2026, 1, 1, 2, 0)) == utc(2026, 1, 2, 2, 0)
    assert cron_next_fire_time("0 2 * * *", "UTC", utc(2026, 1, 1, 1, 59, 59, 999999)) == utc(2026, 1, 1, 2, 0)


def test_after_given_in_another_zone_is_the_same_instant():
    after = datetime(2026, 1, 1, 3, 0, tzinfo=ZoneInfo("Europe/Paris"))  # 02:00 UTC
    result = cron_next_fire_time("0 2 * * *", "UTC", after)
    assert result == utc(2026, 1, 2, 2, 0)
    assert result.utcoffset() == timedelta(0)


def test_results_are_utc():
    result = cron_next_fire_time("0 2 * * *", "Europe/Paris", utc(2026, 1, 1))
    assert result.tzinfo is not None and result.utcoffset() == timedelta(0)


def test_fire_times_are_strictly_increasing():
    times = cron_next_fire_times("*/7 * * * *", "America/New_York", utc(2026, 3, 8, 5), 60)
    assert all(a < b for a, b in zip(times, times[1:]))


# --- standard cron semantics -----------------------------------------------------------------


def test_day_of_month_or_day_of_week_when_both_are_restricted():
    # Standard cron: "on the 1st, or on any Monday" (not "on a 1st that is a Monday").
    times = cron_next_fire_times("0 0 1 * mon", "UTC", utc(2026, 1, 1, 12), 6)
    assert times == [
        utc(2026, 1, 5),  # Monday
        utc(2026, 1, 12),
        utc(2026, 1, 19),
        utc(2026, 1, 26),
        utc(2026, 2, 1),  # the 1st, a Sunday
        utc(2026, 2, 2),  # Monday
    ]


@pytest.mark.parametrize(
    "expression, expected",
    [
        # "At midnight on odd days of the month that are Mondays" (crontab.guru: "on every 2nd
        # day-of-month if it's on Monday"), not every odd day and every Monday.
        ("0 0 */2 * 1", [utc(2026, 1, 5), utc(2026, 1, 19), utc(2026, 2, 9), utc(2026, 2, 23), utc(2026, 3, 9)]),
        # The 1st and 15th when they are a Sunday or a Friday (*/5: days 0 and 5).
        ("0 0 1,15 * */5", [utc(2026, 2, 1), utc(2026, 2, 15), utc(2026, 3, 1), utc(2026, 3, 15), utc(2026, 5, 1)]),
        # Either field starting with '*' is enough, even when it means every day.
        ("0 0 */1 * 1", [utc(2026, 1, 5), utc(2026, 1, 12), utc(2026, 1, 19), utc(2026, 1, 26), utc(2026, 2, 2)]),
        ("0 0 13 * */7", [utc(2026, 9, 13), utc(2026, 12, 13), utc(2027, 6, 13), utc(2028, 2, 13), utc(2028, 8, 13)]),
    ],
)
def test_day_fields_must_both_match_when_either_starts_with_a_star(expression, expected):
    assert cron_next_fire_times(expression, "UTC", utc(2026, 1, 1), len(expected)) == expected


def test_day_fields_and_rule_reads_the_written_field_not_its_values():
    # "1-31" covers every day but does not start with '*': ORed, so every day fires.
    assert cron_next_fire_times("0 0 1-31 * 1", "UTC", utc(2026, 1, 1), 3) == [
        utc(2026, 1, 2),
        utc(2026, 1, 3),
        utc(2026, 1, 4),
    ]


def test_restricted_day_of_month_with_any_weekday_is_day_of_month_only():
    assert cron_next_fire_times("0 0 1 * *", "UTC", utc(2026, 1, 1, 12), 2) == [utc(2026, 2, 1), utc(2026, 3, 1)]


def test_restricted_weekday_with_any_day_of_month_is_weekday_only():
    assert cron_next_fire_times("0 0 * * mon", "UTC", utc(2026, 1, 1, 12), 2) == [utc(2026, 1, 5), utc(2026, 1, 12)]


@pytest.mark.parametrize("sunday", ["0", "7", "sun", "SUN"])
def test_weekday_7_and_0_are_both_sunday(sunday):
    times = cron_next_fire_times(f"0 0 * * {sunday}", "UTC", utc(2026, 1, 1), 3)
    assert times == [utc(2026, 1, 4), utc(2026, 1, 11), utc(2026, 1, 18)]
    assert all(t.weekday() == 6 for t in times)


def test_weekday_range_ending_in_7_includes_sunday():
    times = cron_next_fire_times("0 0 * * 5-7", "UTC", utc(2026, 1, 1, 12), 4)
    assert [t.strftime("%a") for t in times] == ["Fri", "Sat", "Sun", "Fri"]


@pytest.mark.parametrize(
    "macro, expression",
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ],
)
def test_macros_mean_their_five_field_form(macro, expression):
    after = utc(2026, 1, 1, 12, 30)
    assert cron_next_fire_times(macro, "Europe/Paris", after, 3) == cron_next_fire_times(
        expression, "Europe/Paris", after, 3
    )


def test_daily_macro_fires_at_local_midnight():
    assert cron_next_fire_time("@daily", "Europe/Paris", utc(2026, 1, 1, 12)) == utc(2026, 1, 1, 23, 0)


# --- daylight saving time --------------------------------------------------------------------
# America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC); 2026-11-01 02:00 EDT -> 01:00 EST (06:00 UTC).
# Europe/Paris: 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC); 2026-10-25 03:00 CEST -> 02:00 CET (01:00 UTC).
# Australia/Sydney: 2026-04-05 03:00 AEDT -> 02:00 AEST (16:00 UTC on the 4th);
#                   2026-10-04 02:00 AEST -> 03:00 AEDT (16:00 UTC on the 3rd).


@pytest.mark.parametrize(
    "expression, zone, after, expected",
    [
        # A daily time inside the gap runs at the first instant after it, then as usual.
        ("30 2 * * *", "America/New_York", utc(2026, 3, 7, 12), [utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)]),
        ("0 2 * * *", "America/New_York", utc(2026, 3, 7, 12), [utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 0)]),
        ("30 2 * * *", "Europe/Paris", utc(2026, 3, 28, 12), [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]),
        ("30 2 * * *", "Australia/Sydney", utc(2026, 10, 3, 0), [utc(2026, 10, 3, 16, 0), utc(2026, 10, 4, 15, 30)]),
        # Times around the gap are unaffected.
        ("30 1 * * *", "America/New_York", utc(2026, 3, 7, 12), [utc(2026, 3, 8, 6, 30), utc(2026, 3, 9, 5, 30)]),
        ("30 3 * * *", "America/New_York", utc(2026, 3, 7, 12), [utc(2026, 3, 8, 7, 30), utc(2026, 3, 9, 7, 30)]),
    ],
)
def test_spring_forward_gap_fires_at_the_first_instant_after_it(expression, zone, after, expected):
    assert cron_next_fire_times(expression, zone, after, len(expected)) == expected


def test_spring_forward_wildcard_job_skips_the_times_that_do_not_exist():
    times = cron_next_fire_times("*/30 * * * *", "America/New_York", utc(2026, 3, 8, 5, 40), 5)
    # 01:00 EST, 01:30 EST; 02:00 and 02:30 never happen; then 03:00 EDT (a time of its own), 03:30 EDT.
    assert times == [
        utc(2026, 3, 8, 6, 0),
        utc(2026, 3, 8, 6, 30),
        utc(2026, 3, 8, 7, 0),
        utc(2026, 3, 8, 7, 30),
        utc(2026, 3, 8, 8, 0),
    ]
    assert len(set(times)) == len(times)


def test_spring_forward_wildcard_job_inside_the_gap_does_not_run_that_night():
    # The minute field starts with '*': a wildcard job; 02:xx does not exist on 8 March.
    times = cron_next_fire_times("*/20 2 * * *", "America/New_York", utc(2026, 3, 8, 6), 3)
    assert times == [utc(2026, 3, 9, 6, 0), utc(2026, 3, 9, 6, 20), utc(2026, 3, 9, 6, 40)]


def test_spring_forward_fixed_times_inside_the_gap_run_once_after_it():
    # Minute and hour fixed: 02:00, 02:20 and 02:40 are all skipped, so they run once, at 03:00 EDT.
    times = cron_next_fire_times("0,20,40 2 * * *", "America/New_York", utc(2026, 3, 8, 6), 3)
    assert times == [utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 0), utc(2026, 3, 9, 6, 20)]


@pytest.mark.parametrize(
    "expression, zone, after, expected",
    [
        # 01:30 happens at 05:30 UTC (EDT) and again at 06:30 UTC (EST): only the first runs.
        ("30 1 * * *", "America/New_York", utc(2026, 10, 31, 12), [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]),
        ("30 2 * * *", "Europe/Paris", utc(2026, 10, 24, 12), [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]),
        ("30 2 * * *", "Australia/Sydney", utc(2026, 4, 4, 0), [utc(2026, 4, 4, 15, 30), utc(2026, 4, 5, 16, 30)]),
        # Times outside the repeated hour are unaffected.
        ("30 0 * * *", "America/New_York", utc(2026, 10, 31, 12), [utc(2026, 11, 1, 4, 30), utc(2026, 11, 2, 5, 30)]),
        ("30 2 * * *", "America/New_York", utc(2026, 10, 31, 12), [utc(2026, 11, 1, 7, 30), utc(2026, 11, 2, 7, 30)]),
    ],
)
def test_fall_back_repeated_time_fires_only_at_its_first_occurrence(expression, zone, after, expected):
    assert cron_next_fire_times(expression, zone, after, len(expected)) == expected


def test_fall_back_after_the_first_occurrence_does_not_fire_again_at_the_second():
    # The engine asks for the next time right after running the 01:30 EDT fire time.
    assert cron_next_fire_time("30 1 * * *", "America/New_York", utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 2, 6, 30)


def test_fall_back_asked_from_inside_the_repeated_hour():
    # 01:10 EST, the second 01:10: 01:45 EST is a repeat of 01:45 EDT, which already happened.
    assert cron_next_fire_time("45 1 * * *", "America/New_York", utc(2026, 11, 1, 6, 10)) == utc(2026, 11, 2, 6, 45)


def test_fall_back_sub_hourly_wildcard_job_runs_in_both_copies_of_the_hour():
    times = cron_next_fire_times("*/30 * * * *", "America/New_York", utc(2026, 11, 1, 4, 50), 5)
    assert times == [
        utc(2026, 11, 1, 5, 0),
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 1, 6, 0),
        utc(2026, 11, 1, 6, 30),
        utc(2026, 11, 1, 7, 0),
    ]
    local = [t.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M %Z") for t in times]
    assert local == ["01:00 EDT", "01:30 EDT", "01:00 EST", "01:30 EST", "02:00 EST"]


def test_fall_back_every_15_minutes_runs_eight_times_between_01_00_edt_and_01_45_est():
    times = cron_next_fire_times("*/15 * * * *", "America/New_York", utc(2026, 11, 1, 4, 50), 9)
    assert times == [utc(2026, 11, 1, 5, 0) + timedelta(minutes=15 * n) for n in range(9)]
    assert times[-1].astimezone(ZoneInfo("America/New_York")).strftime("%H:%M %Z") == "02:00 EST"


def test_fall_back_hourly_job_runs_every_real_hour():
    times = cron_next_fire_times("0 * * * *", "America/New_York", utc(2026, 11, 1, 4, 30), 3)
    # 01:00 EDT, 01:00 EST, 02:00 EST.
    assert times == [utc(2026, 11, 1, 5, 0), utc(2026, 11, 1, 6, 0), utc(2026, 11, 1, 7, 0)]


def test_fall_back_wildcard_job_with_a_fixed_hour_runs_in_both_copies_of_it():
    times = cron_next_fire_times("*/20 1 * * *", "America/New_York", utc(2026, 11, 1, 4, 50), 7)
    assert times == [
        utc(2026, 11, 1, 5, 0),
        utc(2026, 11, 1, 5, 20),
        utc(2026, 11, 1, 5, 40),  # EDT
        utc(2026, 11, 1, 6, 0),
        utc(2026, 11, 1, 6, 20),
        utc(2026, 11, 1, 6, 40),  # EST
        utc(2026, 11, 2, 6, 0),
    ]


def test_fall_back_fixed_times_run_at_their_first_occurrence_only():
    times = cron_next_fire_times("0,20,40 1 * * *", "America/New_York", utc(2026, 11, 1, 4, 50), 4)
    assert times == [utc(2026, 11, 1, 5, 0), utc(2026, 11, 1, 5, 20), utc(2026, 11, 1, 5, 40), utc(2026, 11, 2, 6, 0)]


def test_wildcard_job_asked_from_inside_the_repeated_hour():
    # 01:10 EST, the second 01:10: the wildcard job's next run is 01:15 EST, a real time of its own.
    assert cron_next_fire_time("*/15 * * * *", "America/New_York", utc(2026, 11, 1, 6, 10)) == utc(2026, 11, 1, 6, 15)


def test_macros_keep_the_dst_rule_of_their_five_field_form():
    # @hourly is "0 * * * *" (a wildcard job); @daily is "0 0 * * *" (fixed).
    assert cron_next_fire_times("@hourly", "America/New_York", utc(2026, 11, 1, 5, 30), 2) == [
        utc(2026, 11, 1, 6, 0),
        utc(2026, 11, 1, 7, 0),
    ]


# Australia/Lord_Howe moves its clocks by 30 minutes: 2026-04-05 02:00 +11 -> 01:30 +1030 (15:00
# UTC on the 4th); 2026-10-04 02:00 +1030 -> 02:30 +11 (15:30 UTC on the 3rd).


def test_thirty_minute_fall_back_repeats_half_an_hour_for_wildcard_jobs():
    times = cron_next_fire_times("*/15 * * * *", "Australia/Lord_Howe", utc(2026, 4, 4, 14, 20), 6)
    local = [t.astimezone(ZoneInfo("Australia/Lord_Howe")).strftime("%H:%M%z") for t in times]
    assert local == ["01:30+1100", "01:45+1100", "01:30+1030", "01:45+1030", "02:00+1030", "02:15+1030"]
    assert times == [utc(2026, 4, 4, 14, 30) + timedelta(minutes=15 * n) for n in range(6)]


def test_thirty_minute_spring_forward_gap_fixed_time_runs_when_the_gap_ends():
    assert cron_next_fire_times("15 2 * * *", "Australia/Lord_Howe", utc(2026, 10, 3, 12), 2) == [
        utc(2026, 10, 3, 15, 30),
        utc(2026, 10, 4, 15, 15),  # 02:30 +11 (the gap's end), then 02:15 +11
    ]


# America/Santiago moves its clocks at midnight: 2026-09-06 00:00 -04 -> 01:00 -03 (04:00 UTC);
# 2026-04-05 00:00 -03 -> 23:00 -04 on the 4th (03:00 UTC).


def test_midnight_gap_fixed_midnight_runs_at_01_00():
    assert cron_next_fire_times("0 0 * * *", "America/Santiago", utc(2026, 9, 5, 12), 2) == [
        utc(2026, 9, 6, 4, 0),
        utc(2026, 9, 7, 3, 0),
    ]


def test_midnight_gap_wildcard_midnight_job_does_not_run_that_day():
    assert cron_next_fire_times("*/30 0 * * *", "America/Santiago", utc(2026, 9, 5, 12), 2) == [
        utc(2026, 9, 7, 3, 0),
        utc(2026, 9, 7, 3, 30),
    ]


def test_repeated_evening_hour_fixed_and_wildcard():
    after = utc(2026, 4, 4, 12)
    # 23:30 -03 (02:30 UTC) and again 23:30 -04 (03:30 UTC): the fixed job takes the first only.
    assert cron_next_fire_times("30 23 * * *", "America/Santiago", after, 2) == [
        utc(2026, 4, 5, 2, 30),
        utc(2026, 4, 6, 3, 30),
    ]
    assert cron_next_fire_times("30 * * * *", "America/Santiago", utc(2026, 4, 5, 2), 3) == [
        utc(2026, 4, 5, 2, 30),
        utc(2026, 4, 5, 3, 30),
        utc(2026, 4, 5, 4, 30),
    ]


def test_utc_jobs_ignore_local_dst():
    times = cron_next_fire_times("30 1 * * *", "UTC", utc(2026, 10, 31, 12), 2)
    assert times == [utc(2026, 11, 1, 1, 30), utc(2026, 11, 2, 1, 30)]


def test_a_year_of_daily_runs_in_paris_is_one_per_day():
    times = cron_next_fire_times("30 2 * * *", "Europe/Paris", utc(2026, 1, 1), 365)
    local_days = [t.astimezone(ZoneInfo("Europe/Paris")).date() for t in times]
    assert len(set(local_days)) == 365
    assert local_days[0].isoformat() == "2026-01-01" and local_days[-1].isoformat() == "2026-12-31"


@pytest.mark.parametrize(
    "expression, words",
    [
        ("0 2 * * 0", "At 02:00, only on Sunday"),
        ("0 2 * * 7", "At 02:00, only on Sunday"),
        ("*/5 * * * *", "Every 5 minutes"),
        ("30 3 * * *", "At 03:30"),
        ("0 9 * * 1-5", "At 09:00, Monday through Friday"),
        ("0 0 1 * mon", "At 00:00, on day 1 of the month, or on Monday"),
        ("*/5 * 1-7 * mon", "Every 5 minutes, between day 1 and 7 of the month, or on Monday"),
        # When either day field starts with '*', both must match: never "or".
        ("0 0 */2 * 1", "At 00:00, on every 2nd day of the month, if it is a Monday"),
        ("0 0 1,15 * */5", "At 00:00, on day 1 and 15 of the month, if it is a Friday or Sunday"),
        ("0 0 */10 * mon-fri", "At 00:00, on every 10th day of the month, if it is a Monday through Friday"),
        ("0 0 L * */2", "At 00:00, on the last day of the month, if it is a Tuesday, Thursday, Saturday or Sunday"),
        ("0 0 */2 * 5#3", "At 00:00, on every 2nd day of the month, if it is the third Friday of the month"),
        ("0 0 */1 * 1", "At 00:00, only on Monday"),
        ("0 0 */2 * *", "At 00:00, on every 2nd day of the month"),
        ("0 0 * * */2", "At 00:00, only on Tuesday, Thursday, Saturday and Sunday"),
        ("0 0 1 * 1-5/2", "At 00:00, on day 1 of the month, or on Monday, Wednesday and Friday"),
        ("0 0 1,L * *", "At 00:00, on day 1 and the last day of the month"),
        ("0 0 * * 5#3", "At 00:00, on the third Friday of the month"),
        ("@daily", "At 00:00"),
        ("@hourly", "Every hour"),
        ("@weekly", "At 00:00, only on Sunday"),
        ("@monthly", "At 00:00, on day 1 of the month"),
        ("@yearly", "At 00:00, on day 1 of the month, only in January"),
    ],
)
def test_cron_describe(expression, words):
    assert cron_describe(expression) == words


def test_cron_describe_falls_back_to_the_expression():
    assert cron_describe("not a cron") == "not a cron"


def test_one_expression_in_several_zones_and_threads_keeps_each_answer_apart():
    # The parsed expression is shared between callers; each look-up must still use its own zone
    # and start, whatever runs in between.
    expression = "0 9 * * 1-5"
    expected = {
        "Europe/Paris": utc(2026, 11, 30, 8, 0),  # Monday 09:00 CET
        "America/New_York": utc(2026, 11, 30, 14, 0),  # Monday 09:00 EST
        "Asia/Tokyo": utc(2026, 11, 30, 0, 0),  # Monday 09:00 JST
    }
    after = utc(2026, 11, 28, 12)  # a Saturday

    def answers(_):
        return {zone: cron_next_fire_time(expression, zone, after) for zone in expected}

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(answers, range(200)))
    assert all(result == expected for result in results)

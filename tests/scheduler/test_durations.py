"""Durations in words: intervals, run durations, ages."""

from datetime import UTC, datetime, timedelta

import pytest

from scheduler.durations import age_words, duration_words, interval_words, milliseconds_words, relative_words

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "seconds, words",
    [
        (1, "every second"),
        (5, "every 5 seconds"),
        (60, "every minute"),
        (90, "every 1 minute 30 seconds"),
        (300, "every 5 minutes"),
        (3600, "every hour"),
        (5400, "every 1 hour 30 minutes"),
        (7200, "every 2 hours"),
        (86400, "every day"),
        (172800, "every 2 days"),
        (90061, "every 1 day 1 hour 1 minute 1 second"),
        (0, "never"),
    ],
)
def test_interval_words(seconds, words):
    assert interval_words(seconds) == words


@pytest.mark.parametrize(
    "ms, words",
    [
        (None, "-"),
        (0.5, "0.5 ms"),
        (850, "850 ms"),
        (12_340, "12.3 s"),
        (242_000, "4 min 2 s"),
        (240_000, "4 min"),
        (7_500_000, "2 h 5 min"),
        (3_605_000, "1 h"),
        (108_000_000, "30 h"),  # run durations never switch to days
    ],
)
def test_milliseconds_words(ms, words):
    assert milliseconds_words(ms) == words


@pytest.mark.parametrize(
    "seconds_ago, words",
    [(0, "0 s ago"), (4, "4 s ago"), (59, "59 s ago"), (180, "3 min ago"), (7300, "2 h ago"), (200_000, "2 d ago")],
)
def test_age_words_says_the_largest_unit(seconds_ago, words):
    assert age_words(NOW - timedelta(seconds=seconds_ago), NOW) == words


def test_age_of_nothing_and_of_the_future():
    assert age_words(None, NOW) == "-"
    assert age_words(NOW + timedelta(seconds=5), NOW) == "0 s ago"  # a clock a little ahead


def test_relative_words_says_in_or_ago():
    assert relative_words(NOW + timedelta(minutes=5), NOW) == "in 5 min"
    assert relative_words(NOW - timedelta(hours=3, minutes=1), NOW) == "3 h ago"


def test_duration_words_parts_skip_zero_units():
    assert duration_words(86400 + 30, parts=4, long=True) == "1 day 30 seconds"
    assert duration_words(3661, parts=2) == "1 h 1 min"

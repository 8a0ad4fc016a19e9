"""Tests of the schedule arithmetic of interval jobs: the grid and the wording."""

from datetime import UTC, datetime, timedelta

import pytest

from scheduler.services.schedules import interval_next_fire_time


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- intervals -------------------------------------------------------------------------------

ANCHOR = utc(2026, 1, 1, 12, 0)
FIVE_MINUTES = timedelta(minutes=5)


@pytest.mark.parametrize(
    "after, expected",
    [
        (ANCHOR - timedelta(hours=1), ANCHOR),  # the anchor itself is the first point
        (ANCHOR - timedelta(microseconds=1), ANCHOR),
        (ANCHOR, ANCHOR + FIVE_MINUTES),  # strictly after
        (ANCHOR + timedelta(minutes=1), ANCHOR + FIVE_MINUTES),
        (ANCHOR + timedelta(minutes=12, seconds=30), ANCHOR + timedelta(minutes=15)),
        (ANCHOR + timedelta(minutes=15), ANCHOR + timedelta(minutes=20)),
        (ANCHOR + timedelta(days=365, seconds=1), ANCHOR + timedelta(days=365, minutes=5)),
    ],
)
def test_interval_next_fire_time_stays_on_the_grid(after, expected):
    assert interval_next_fire_time(ANCHOR, FIVE_MINUTES, after) == expected


def test_interval_grid_with_an_uneven_interval_has_no_drift():
    interval = timedelta(seconds=7, microseconds=1)
    after = ANCHOR + interval * 1_000_000
    assert interval_next_fire_time(ANCHOR, interval, after) == ANCHOR + interval * 1_000_001

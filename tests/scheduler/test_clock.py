"""The database's clock as a process reads it: counted on from a reading by the monotonic clock."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from scheduler import clock

READING = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def unread(monkeypatch):
    monkeypatch.setattr(clock, "_reading", None)


def test_without_a_reading_it_is_the_host_clock(unread):
    before = timezone.now()
    assert before <= clock.now() <= timezone.now()
    assert abs(clock.offset()) < timedelta(seconds=1)


def test_after_a_reading_it_counts_on_from_the_database_time(unread):
    clock.synchronise(READING, time.monotonic() - 2.5)
    assert READING + timedelta(seconds=2.5) <= clock.now() < READING + timedelta(seconds=3.5)


def test_a_step_of_the_host_wall_clock_between_readings_changes_nothing(unread, monkeypatch):
    clock.synchronise(READING, time.monotonic())
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=90))  # NTP steps the clock
    assert clock.now() < READING + timedelta(seconds=1)

"""validate_cron: exit codes, messages, and fire times that agree with the scheduler's own."""

import subprocess
import sys
from datetime import datetime
from io import StringIO
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from scheduler.services.cron import cron_next_fire_times

ROOT = Path(__file__).resolve().parents[3]
FROZEN_NOW = datetime.fromisoformat("2025-03-29T12:00:00+00:00")


def run(*args):
    out = StringIO()
    with mock.patch("django.utils.timezone.now", return_value=FROZEN_NOW):
        call_command("validate_cron", *args, stdout=out)
    return out.getvalue()


def test_valid_expression_prints_description_and_next_times():
    output = run("0 2 * * *", "--timezone", "UTC", "--count", "3")
    assert "Valid: 0 2 * * *" in output
    assert "Description: At 02:00" in output
    assert "2025-03-30 02:00 UTC" in output
    assert "2025-04-01 02:00 UTC" in output
    assert "2025-04-02" not in output  # exactly --count times


def test_times_are_the_engines_including_spring_forward():
    # 02:30 does not exist in Paris on 2025-03-30: the engine fires at the first instant after
    # the gap, and the preview must say the same.
    output = run("30 2 * * *", "--timezone", "Europe/Paris", "--count", "2")
    expected = cron_next_fire_times("30 2 * * *", "Europe/Paris", FROZEN_NOW, 2)
    for fire_time in expected:
        assert f"({fire_time:%Y-%m-%d %H:%M} UTC)" in output
    assert "2025-03-30 03:00 CEST (+0200)" in output


def test_after_shows_a_fall_back_night_before_it_happens():
    # New York, 1 November 2026: a wildcard job runs in both copies of 01:xx, a fixed one once.
    wildcard = run(
        "*/30 * * * *", "--timezone", "America/New_York", "--after", "2026-11-01T00:50:00-04:00", "--count", "5"
    )
    assert "Next 5 fire times after 2026-11-01 00:50:00 EDT (-0400):" in wildcard
    lines = [line.strip() for line in wildcard.splitlines() if line.startswith("  2026")]
    assert [line[:25] for line in lines] == [
        "2026-11-01 01:00 EDT (-04",
        "2026-11-01 01:30 EDT (-04",
        "2026-11-01 01:00 EST (-05",
        "2026-11-01 01:30 EST (-05",
        "2026-11-01 02:00 EST (-05",
    ]
    fixed = run("30 1 * * *", "--timezone", "America/New_York", "--after", "2026-11-01T04:50:00Z", "--count", "2")
    assert "2026-11-01 01:30 EDT (-0400)" in fixed and "EST (-0500)  (2026-11-01" not in fixed
    assert "2026-11-02 01:30 EST (-0500)" in fixed


def test_after_with_the_day_fields_anded():
    output = run("0 0 */2 * 1", "--timezone", "UTC", "--after", "2026-01-01T00:00:00Z", "--count", "3")
    assert "Description: At 00:00, on every 2nd day of the month, if it is a Monday" in output
    assert "2026-01-05 00:00 UTC" in output and "2026-01-19 00:00 UTC" in output and "2026-02-09 00:00 UTC" in output
    assert "2026-01-12" not in output


def test_macro_is_accepted():
    assert "Valid: @daily" in run("@daily")


@pytest.mark.parametrize(
    "args, message",
    [
        (["61 * * * *"], "out of range"),
        (["* * *"], "has 5 fields"),
        (["0 0 30 2 *"], "never matches a real date"),
        (["0 H * * *"], "standard cron does not support"),
        (["0 2 * * *", "--timezone", "Mars/Olympus"], "Unknown timezone 'Mars/Olympus'"),
        (["0 2 * * *", "--count", "0"], "--count must be between 1 and 100"),
        (["0 2 * * *", "--after", "2026-11-01T01:30:00"], "--after: '2026-11-01T01:30:00' has no UTC offset"),
        (["0 2 * * *", "--after", "tomorrow"], "--after: 'tomorrow' is not an ISO 8601 date and time"),
        (["0 2 * * *", "--after", "3999-01-01T00:00:00Z"], "--after: '3999-01-01T00:00:00Z' is out of range"),
        (["0 0 5-5 * *"], "The day of month field '5-5' has the range"),
    ],
)
def test_invalid_input_raises_with_exit_code_2(args, message):
    with pytest.raises(CommandError) as exc:
        run(*args)
    assert exc.value.returncode == 2
    assert message in str(exc.value)


def test_command_line_exit_codes_and_stderr():
    manage = [sys.executable, str(ROOT / "manage.py"), "validate_cron"]
    ok = subprocess.run([*manage, "*/15 * * * *", "--count", "1"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "Every 15 minutes" in ok.stdout

    bad = subprocess.run([*manage, "99 * * * *"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert bad.returncode == 2
    assert "out of range" in bad.stderr
    assert bad.stdout == ""

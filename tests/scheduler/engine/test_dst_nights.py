"""A real `runscheduler` fires exactly the previewed times through a fall-back and a spring-forward night.

The scheduler runs on a controllable clock: libfaketime (Debian's faketime package) starts its
wall clock a few minutes before a daylight saving change of America/New_York and runs it 120
times as fast, so the hour around the change passes in about half a minute. Jobs get a next run
just before the change, a large misfire grace time and no coalescing, so a run claimed a little
late (the poll wakes the engine every half real second, a minute of fake time) still runs at its
own scheduled time. The set of scheduled times the engine recorded must equal the preview.

libfaketime 0.9.10 and Python 3.11: timed waits (threading, queue) use sem_clockwait on
CLOCK_MONOTONIC, which libfaketime does not intercept, so a faked monotonic clock makes every
timed wait hang. FAKETIME_DONT_FAKE_MONOTONIC=1 keeps the monotonic clock real: waits and
timeouts last real time while the wall clock runs fast. time.sleep then fails with EINVAL, and
the engine calls it only to back off from a database that does not answer.
"""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.models import ExecutionStatus, JobExecution, ScheduledJob
from scheduler.services.schedules import Schedule, job_next_fire_time
from tests.conftest import libfaketime_path, service_missing
from tests.factories import CronJobFactory
from tests.scheduler.engine.conftest import wait_until

ZONE = "America/New_York"
SPEED = 120
NIGHTS = {
    # 2026-11-01 02:00 EDT -> 01:00 EST, at 06:00 UTC.
    "fall-back": {
        "change": datetime(2026, 11, 1, 6, 0, tzinfo=UTC),
        "jobs": {
            "*/5 * * * *": "wildcard: every 5 minutes in both copies of 01:xx",
            "*/20 1 * * *": "wildcard with a fixed hour: 01:40 EDT, then 01:00, 01:20, 01:40 EST",
            "0 * * * *": "wildcard: 01:00 EST and 02:00 EST, every real hour",
            "45 1 * * *": "fixed: 01:45 EDT only",
            "10 1 * * *": "fixed: its first 01:10 has passed, so not at 01:10 EST",
        },
    },
    # 2027-03-14 02:00 EST -> 03:00 EDT, at 07:00 UTC.
    "spring-forward": {
        "change": datetime(2027, 3, 14, 7, 0, tzinfo=UTC),
        "jobs": {
            "*/5 * * * *": "wildcard: 01:40 ... 01:55 EST, then 03:00 EDT on",
            "*/10 2 * * *": "wildcard in the gap: no run that night",
            "0 * * * *": "wildcard: 03:00 EDT (one real hour after 01:00 EST), 04:00 EDT",
            "30 2 * * *": "fixed, in the gap: once, at 03:00 EDT",
            "0,30 2,3 * * *": "fixed: 02:00 and 02:30 collapse into 03:00 EDT, then 03:30 EDT",
        },
    },
}
START_BEFORE = timedelta(minutes=22)  # fake clock start, before the change
WINDOW_AFTER = timedelta(minutes=62)  # compared up to this long after the change


def faketime_library() -> str:
    path = libfaketime_path()
    if path is None:
        service_missing("libfaketime is not installed", "apt-get install faketime (Debian) to run this test")
    return path


def faketime_env(start: datetime) -> dict[str, str]:
    return {
        "LD_PRELOAD": faketime_library(),
        "FAKETIME": f"@{start:%Y-%m-%d %H:%M:%S} x{SPEED}",
        "TZ": "UTC",  # libfaketime reads FAKETIME's date in the process's local time
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "SCHEDULER_POLL_INTERVAL": "0.5",
        # The engine normally schedules by the database's clock; here the night is this host's.
        "SCHEDULER_CLOCK_SOURCE": "host",
    }


def test_faketime_moves_the_wall_clock_fast_and_leaves_timeouts_real():
    start = datetime(2026, 11, 1, 5, 38, tzinfo=UTC)
    probe = (
        "import threading, time; t0 = time.time(); m0 = time.monotonic(); "
        "threading.Event().wait(0.5); print(t0, time.time() - t0, time.monotonic() - m0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, **faketime_env(start)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    started, wall, monotonic = map(float, result.stdout.split())
    assert abs(started - start.timestamp()) < 60, "the fake clock starts at FAKETIME"
    assert 0.4 < monotonic < 5, "a timed wait lasts real time"
    assert wall > 0.4 * SPEED / 2, "the wall clock runs fast"


def expected_fire_times(job: ScheduledJob, until: datetime) -> list[datetime]:
    """The preview: the job's fire times from its next run up to `until`, as the engine chains them."""
    times = [job.next_run_time]
    while (following := Schedule.of(job).following(times[-1])) <= until:
        times.append(following)
    return [moment for moment in times if moment <= until]


@pytest.mark.parametrize("night", list(NIGHTS))
def test_engine_fires_the_previewed_times_through_a_dst_night(start_scheduler, night):
    change = NIGHTS[night]["change"]
    start, until = change - START_BEFORE, change + WINDOW_AFTER
    env = faketime_env(start)  # skips or fails first when libfaketime is missing
    jobs = {}
    for expression in NIGHTS[night]["jobs"]:
        job = CronJobFactory(
            cron_expression=expression, timezone=ZONE, misfire_grace_time=3600, coalesce=False, max_instances=10
        )
        # The first fire time after the fake clock's start (the factory used the real now).
        ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=job_next_fire_time(job, start))
        job.refresh_from_db()
        jobs[expression] = job
    expected = {expression: expected_fire_times(job, until) for expression, job in jobs.items()}
    sentinel = jobs["*/5 * * * *"]
    after_window = Schedule.of(sentinel).following(expected["*/5 * * * *"][-1])

    proc = start_scheduler(env=env)
    # Once the sentinel has run past the window, every run due in it has been claimed: a claim
    # takes all due runs, earliest first.
    wait_until(
        lambda: JobExecution.objects.filter(job=sentinel, scheduled_time=after_window).exists(),
        timeout=150,
        message=f"the engine to pass {until.isoformat()} on its fake clock",
        interval=0.25,
    )
    assert proc.terminate() == 0, proc.log()

    for expression, job in jobs.items():
        fired = sorted(
            JobExecution.objects.filter(job=job, scheduled_time__lte=until).values_list("scheduled_time", flat=True)
        )
        assert fired == expected[expression], f"{expression!r} ({NIGHTS[night]['jobs'][expression]})"
    outcomes = set(JobExecution.objects.filter(scheduled_time__lte=until).values_list("status", flat=True))
    assert outcomes == {ExecutionStatus.SUCCESS}, proc.log()


def test_the_nights_show_what_the_rules_say():
    """The expected times above, spelled out, so that the engine test cannot pass on a wrong preview."""
    tz = ZoneInfo(ZONE)

    def walls(expression, night):
        change = NIGHTS[night]["change"]
        job = ScheduledJob(cron_expression=expression, timezone=ZONE, job_type_id=2)
        job.next_run_time = job_next_fire_time(job, change - START_BEFORE)
        return [f"{t.astimezone(tz):%H:%M %Z}" for t in expected_fire_times(job, change + WINDOW_AFTER)]

    assert walls("*/20 1 * * *", "fall-back") == ["01:40 EDT", "01:00 EST", "01:20 EST", "01:40 EST"]
    assert walls("0 * * * *", "fall-back") == ["01:00 EST", "02:00 EST"]
    assert walls("0 * * * *", "spring-forward") == ["03:00 EDT", "04:00 EDT"]
    assert walls("45 1 * * *", "fall-back") == ["01:45 EDT"]
    assert walls("10 1 * * *", "fall-back") == []  # its next run is the next day
    assert walls("*/10 2 * * *", "spring-forward") == []
    assert walls("30 2 * * *", "spring-forward") == ["03:00 EDT"]
    assert walls("0,30 2,3 * * *", "spring-forward") == ["03:00 EDT", "03:30 EDT"]
    assert walls("*/5 * * * *", "spring-forward")[3:5] == ["01:55 EST", "03:00 EDT"]

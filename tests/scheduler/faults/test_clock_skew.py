"""Fault 3: a scheduler on a host whose clock is wrong (libfaketime).

What a wrong host clock must not do: fire runs before their time by the database's clock, or take
over the lease (max_instances slot) of a run a healthy process is executing. What it must do: say
so, in the process's log, in /status, on the dashboard and in a metric.

"When did the run really start" is not taken from the engine's records (the engine under test
writes them): the task functions read the database's clock themselves (task_functions.py).
"""

import re
import time
from datetime import datetime, timedelta

import pytest
from django.utils.html import strip_tags
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from scheduler.models import JobExecution, JobLease, SchedulerInstance
from scheduler.services.jobs import job_trigger
from tests.factories import IntervalJobFactory
from tests.scheduler.faults.conftest import (
    TASK_MODULES,
    cpu_seconds,
    db_now,
    instance_of,
    marks,
    most_at_once,
    task_function,
    wait_until,
)

pytestmark = pytest.mark.postgres

SKEW_WARNING = re.compile(r"WARNING .*clock.*differs from the database's", re.IGNORECASE)
JOBS = 3
INTERVAL = 2
MEASUREMENT_ERROR = timedelta(seconds=0.25)


@pytest.fixture
def superuser(db, django_user_model):
    return django_user_model.objects.create_superuser("clock-admin", "clock@example.com", "pass")


def _status_instance(superuser, instance_id) -> dict | None:
    api = APIClient()
    api.force_authenticate(superuser)
    response = api.get("/api/v1/scheduler/status")
    assert response.status_code == 200, response.content[:500]
    return next((i for i in response.json()["instances"] if i["instanceId"] == instance_id), None)


def _dashboard_row(client, superuser, instance_id) -> tuple[str, str]:
    """(the instances table's header text, the instance's row text) on the dashboard."""
    client.force_login(superuser)
    page = client.get("/scheduler/").content.decode()
    table = re.search(r'<table class="[^"]*\binstances\b[^"]*">(.*?)</table>', page, re.DOTALL)
    assert table, "the dashboard shows no instances table"
    header = re.search(r"<thead>(.*?)</thead>", table[1], re.DOTALL)
    rows = [strip_tags(row) for row in re.findall(r"<tr>(.*?)</tr>", table[1], re.DOTALL) if instance_id in row]
    assert rows, f"the dashboard does not list {instance_id}"
    return strip_tags(header[1] if header else ""), rows[0].replace(instance_id, "")


def _offset_metric(client, instance_id) -> float | None:
    response = client.get("/metrics")
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            if (
                sample.name == "scheduler_instance_clock_offset_seconds"
                and sample.labels.get("instance_id") == instance_id
            ):
                return sample.value
    return None


def _near(value, expected, tolerance=3.0) -> bool:
    return value is not None and abs(value - expected) <= tolerance


def test_a_fast_clock_never_fires_early_and_says_so(postgres, start_scheduler, faketime, client, superuser):
    skewed = start_scheduler("--workers", "2", env={**faketime(90), "SCHEDULER_TASK_MODULES": TASK_MODULES})
    row = instance_of(skewed)
    function = task_function("db_clock")
    jobs = [
        IntervalJobFactory(task_function=function, interval_seconds=INTERVAL, interval_minutes=None)
        for _ in range(JOBS)
    ]
    watched_from, cpu_from = time.monotonic(), cpu_seconds(skewed.pid)
    wait_until(
        lambda: all(JobExecution.objects.filter(job=job, status="success").count() >= 3 for job in jobs),
        30,
        "three runs of each job",
    )
    busy = (cpu_seconds(skewed.pid) - cpu_from) / (time.monotonic() - watched_from)

    early, late, misrecorded, backwards = [], [], [], []
    runs = list(JobExecution.objects.filter(job__in=jobs, status="success"))
    for run in runs:
        started = datetime.fromisoformat(run.result["db_started"])  # the database's clock, read by the run
        at = (run.job_id, run.scheduled_time.isoformat())
        # The engine knows the database's clock to within half a round trip of its measurement.
        if started < run.scheduled_time - MEASUREMENT_ERROR:
            early.append((*at, f"{(run.scheduled_time - started).total_seconds():.1f}s early"))
        elif started - run.scheduled_time > timedelta(seconds=10):  # on time, not an offset late
            late.append((*at, f"{(started - run.scheduled_time).total_seconds():.1f}s late"))
        if abs(run.started_at - started) > timedelta(seconds=1.5):
            misrecorded.append((*at, f"started_at {run.started_at.isoformat()}, really {started.isoformat()}"))
        if run.finished_at < run.started_at or run.duration_ms < 0:
            backwards.append((*at, run.started_at.isoformat(), run.finished_at.isoformat(), run.duration_ms))
    assert not early, f"{len(early)} of {len(runs)} runs started before their fire time (database's clock): {early[:5]}"
    assert not late, f"runs started late by the database's clock: {late[:5]}"
    assert not misrecorded, f"started_at is not on the database's clock: {misrecorded[:5]}"
    assert not backwards, f"runs recorded as ending before they started (started, finished, ms): {backwards[:5]}"
    assert busy < 0.5, f"the skewed scheduler used {busy:.0%} of a CPU while 3 jobs ran every {INTERVAL}s (busy loop?)"

    # It says so: log, the instance's row, /status, the dashboard, the metric.
    assert SKEW_WARNING.search(skewed.log()), f"no clock-skew warning in the log:\n{skewed.log()[:3000]}"
    row = wait_until(
        lambda: SchedulerInstance.objects.filter(pk=row.pk, clock_offset__isnull=False).first(),
        10,
        "the instance's clock_offset measured",
    )
    assert _near(row.clock_offset, -90), f"clock_offset {row.clock_offset}, expected about -90 (database minus host)"
    shown = _status_instance(superuser, row.instance_id)
    assert shown is not None, "/status does not list the skewed (yet alive) scheduler"
    assert _near(shown.get("clockOffset"), -90), f"/status shows {shown}"
    header, cells = _dashboard_row(client, superuser, row.instance_id)
    assert "clock" in header.lower(), f"the dashboard's instances table has no clock column: {header!r}"
    numbers = [float(n) for n in re.findall(r"[-+]?\d+(?:\.\d+)?", cells)]
    assert any(_near(n, -90) for n in numbers), f"the dashboard's row does not show the offset: {cells!r}"
    assert _near(_offset_metric(client, row.instance_id), -90), (
        "scheduler_instance_clock_offset_seconds missing or wrong"
    )
    assert skewed.terminate() == 0, skewed.log()[-3000:]
    print(f"{len(runs)} runs, none early; offset {row.clock_offset:+.1f}s; CPU {busy:.0%}")


def test_a_clock_two_hours_fast_neither_reaps_a_live_lease_nor_exceeds_max_instances(
    postgres, start_scheduler, faketime, tmp_path, user
):
    ttl = 6  # renewed every second: a loaded machine does not lose the lease by accident
    env = {"SCHEDULER_TASK_MODULES": TASK_MODULES, "SCHEDULER_LOCK_TTL": str(ttl)}
    healthy = start_scheduler("--workers", "2", env=env)
    marks_file, release = tmp_path / "marks.txt", tmp_path / "release"
    # Its next scheduled fire time is an hour away by the database's clock; the first run is a
    # manual one, which lasts until the test releases it.
    job = IntervalJobFactory(
        task_function=task_function("marked_sleep"),
        interval_hours=1,
        interval_minutes=None,
        max_instances=1,
        kwargs={"path": str(marks_file), "seconds": 120, "label": "long", "release": str(release)},
    )
    first = job_trigger(job, user=user)
    wait_until(lambda: JobExecution.objects.filter(pk=first.pk, status="running").exists(), 20, "the long run running")
    assert JobExecution.objects.get(pk=first.pk).instance_id == instance_of(healthy).instance_id

    fast = start_scheduler("--workers", "2", env={**env, **faketime(7200)})
    fast_row = instance_of(fast)
    # The fast process's clock makes every lease look expired and the job due at its first
    # heartbeat and wake-up: watch over several of its heartbeats while the run goes on.
    beats, heartbeat_drift = set(), []
    watch_until = time.monotonic() + 5
    while time.monotonic() < watch_until or len(beats) < 4:
        assert time.monotonic() < watch_until + 20, f"the fast process heartbeats too rarely: {len(beats)} beats"
        now = db_now()
        beat = SchedulerInstance.objects.get(pk=fast_row.pk).last_heartbeat
        beats.add(beat)
        heartbeat_drift.append((beat - now).total_seconds())
        lease = JobLease.objects.filter(execution_id=first.pk).first()
        current = JobExecution.objects.get(pk=first.pk)
        assert current.status == "running", (
            f"the healthy process's run was ended: {current.status} {current.error_message}"
        )
        assert lease is not None, "the running run's lease was taken away"
        assert lease.expires_at - now <= timedelta(seconds=ttl + 2), f"lease renewed to {lease.expires_at} at {now}"
        time.sleep(0.3)
    release.touch()

    first = wait_until(
        lambda: JobExecution.objects.filter(pk=first.pk).exclude(status="running").first(), 20, "the long run to end"
    )
    assert first.status == "success", f"the healthy process's run ended {first.status}: {first.error_message}"
    others = list(
        JobExecution.objects.filter(job=job).exclude(pk=first.pk).values_list("scheduled_time", "status", "instance_id")
    )
    assert not others, f"runs of the job that was not due for an hour by the database's clock: {others}"
    events = marks(marks_file)
    assert most_at_once(events) == 1, f"max_instances=1 exceeded: {events}"
    assert [e["event"] for e in events] == ["start", "end"], events

    assert SKEW_WARNING.search(fast.log()), f"no clock-skew warning in the log:\n{fast.log()[:3000]}"
    fast_row.refresh_from_db()
    assert _near(fast_row.clock_offset, -7200), f"clock_offset {fast_row.clock_offset}, expected about -7200"
    # Heartbeats on the database's clock (a beat is at most a few seconds old on a loaded machine;
    # on the host's clock it would be two hours ahead).
    assert max(abs(d) for d in heartbeat_drift) < 60, f"heartbeats are not on the database's clock: {heartbeat_drift}"
    assert SchedulerInstance.objects.alive().filter(pk=fast_row.pk).exists(), "the fast process is not seen alive"
    stopped = {"fast": fast.terminate(), "healthy": healthy.terminate()}
    assert stopped == {"fast": 0, "healthy": 0}, fast.log()[-3000:]

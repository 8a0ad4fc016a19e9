"""GET /status and the selectors behind it: processes alive, job and execution counts, the next ten runs."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scheduler import selectors
from scheduler.models import ExecutionStatus, ScheduledJob, SchedulerInstance
from scheduler.services.jobs import job_delete, job_disable, job_pause
from tests.factories import ExecutionFactory, IntervalJobFactory
from tests.scheduler.api.conftest import API

pytestmark = pytest.mark.django_db

STATUS = f"{API}/status"


def instance(name, *, heartbeat_ago=timedelta(0), stopped=False):
    now = timezone.now()
    return SchedulerInstance.objects.create(
        instance_id=name,
        hostname=f"{name}.example",
        pid=1234,
        started_at=now - timedelta(hours=1),
        last_heartbeat=now - heartbeat_ago,
        stopped_at=now if stopped else None,
    )


def test_status_with_no_scheduler_running(client):
    response = client.get(STATUS)

    assert response.status_code == 200
    body = response.json()
    assert body["schedulerAlive"] is False
    assert body["instances"] == []
    assert set(body) == {"schedulerAlive", "instances", "jobs", "executions", "nextRuns", "generatedAt"}


def test_status_lists_only_live_processes(client):
    instance("live")
    instance("silent", heartbeat_ago=timedelta(hours=1))
    instance("stopped", stopped=True)

    body = client.get(STATUS).json()

    assert body["schedulerAlive"] is True
    (live,) = body["instances"]
    assert live["instanceId"] == "live" and live["hostname"] == "live.example" and live["pid"] == 1234
    assert {"startedAt", "lastHeartbeat"} <= set(live)


def test_job_counts(client):
    IntervalJobFactory()
    job_disable(IntervalJobFactory())
    job_pause(IntervalJobFactory())
    job_delete(IntervalJobFactory())

    jobs = client.get(STATUS).json()["jobs"]

    # The built-in cleanup job is one of the enabled ones.
    assert jobs == {"total": 4, "enabled": 3, "disabled": 1, "paused": 1}


def test_execution_counts_now_and_over_the_last_24_hours(client, interval_job):
    now = timezone.now()
    ExecutionFactory(job=interval_job, status=ExecutionStatus.PENDING)
    ExecutionFactory(job=interval_job, status=ExecutionStatus.RUNNING)
    ExecutionFactory(job=interval_job, status=ExecutionStatus.SUCCESS, finished_at=now - timedelta(hours=1))
    ExecutionFactory(job=interval_job, status=ExecutionStatus.SUCCESS, finished_at=now - timedelta(hours=2))
    ExecutionFactory(job=interval_job, status=ExecutionStatus.FAILED, finished_at=now - timedelta(hours=3))
    ExecutionFactory(job=interval_job, status=ExecutionStatus.FAILED, finished_at=now - timedelta(hours=30))
    ExecutionFactory(job=interval_job, status=ExecutionStatus.SKIPPED, finished_at=now)
    ExecutionFactory(job=interval_job, status=ExecutionStatus.MISSED, finished_at=now)
    ExecutionFactory(job=interval_job, status=ExecutionStatus.WAITING)
    ExecutionFactory(job=interval_job, status=ExecutionStatus.TIMED_OUT, finished_at=now - timedelta(minutes=5))
    ExecutionFactory(job=interval_job, status=ExecutionStatus.CANCELLED, finished_at=now - timedelta(minutes=5))

    executions = client.get(STATUS).json()["executions"]

    assert executions == {
        "pending": 1,
        "waiting": 1,
        "running": 1,
        "succeeded": 2,
        "failed": 1,
        "timedOut": 1,
        "cancelled": 1,
        "skipped": 1,
        "missed": 1,
        "windowHours": 24,
    }


def test_next_runs_are_the_ten_soonest_schedulable_jobs(client):
    ScheduledJob.objects.update(is_active=False)  # leave the built-in job out of the picture
    now = timezone.now()
    jobs = [IntervalJobFactory(name=f"job {n:02}") for n in range(12)]
    for n, job in enumerate(jobs):
        ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=now + timedelta(minutes=12 - n))
    job_pause(jobs[11])  # the soonest, but paused
    job_disable(jobs[10])

    next_runs = client.get(STATUS).json()["nextRuns"]

    assert [run["name"] for run in next_runs] == [f"job {n:02}" for n in range(9, -1, -1)]
    assert next_runs[0]["taskFunctionName"] == "tasks.functions.noop"
    assert set(next_runs[0]) == {"jobId", "name", "taskFunctionName", "nextRunTime", "priority"}


def test_status_takes_a_fixed_number_of_queries(client):
    for n in range(15):
        IntervalJobFactory(name=f"job {n}")
    instance("a")
    instance("b")

    with CaptureQueriesContext(connection) as captured:
        client.get(STATUS)
    few = len(captured)
    for n in range(15, 30):
        IntervalJobFactory(name=f"job {n}")
    instance("c")
    with CaptureQueriesContext(connection) as captured:
        client.get(STATUS)

    assert len(captured) == few


def test_selectors_work_without_a_request(interval_job):
    """The dashboard reuses these: plain Python values, no DRF involved."""
    instance("live")

    status = selectors.scheduler_status()

    assert status.scheduler_alive is True
    assert [i.instance_id for i in status.instances] == ["live"]
    assert status.jobs.total == 2
    assert interval_job in status.next_runs
    assert selectors.job_get(interval_job.pk).last_execution_status is None
    assert selectors.job_get(999999) is None

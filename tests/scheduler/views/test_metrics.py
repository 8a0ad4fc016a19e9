"""/metrics: figures read from the database at scrape time, that move when runs happen."""

from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from scheduler.enums import ExecutionStatus as S
from scheduler.models import JobLease, SchedulerInstance
from scheduler.services.executions import (
    execution_fail,
    execution_finish,
    execution_start,
)
from scheduler.services.jobs import job_disable, job_pause, job_trigger
from tests.factories import ExecutionFactory, IntervalJobFactory


def scrape(client) -> dict:
    """{(sample name, frozenset of labels): value} of one scrape."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, frozenset((k, str(v)) for k, v in labels.items())))


def job_labels(job):
    return {"job_id": job.pk, "job_name": job.name}


def scheduled_run(job, *, lag_seconds=0.0):
    execution = ExecutionFactory(job=job, scheduled_time=timezone.now() - timedelta(seconds=lag_seconds))
    return execution_start(execution, instance_id="host-a")


@pytest.fixture
def job(db):
    return IntervalJobFactory(name="report")


def test_no_login_needed_and_empty_database_scrapes(client, db):
    samples = scrape(client)
    assert value(samples, "scheduler_database_up") == 1
    assert value(samples, "scheduler_instances_alive") == 0
    assert value(samples, "scheduler_fire_lag_seconds_bucket", le="+Inf") == 0


def test_runs_by_job_and_status_change_when_runs_happen(client, job):
    before = scrape(client)
    assert value(before, "scheduler_job_runs", **job_labels(job), status="success") is None

    execution_finish(scheduled_run(job))
    after_success = scrape(client)
    assert value(after_success, "scheduler_job_runs", **job_labels(job), status="success") == 1
    assert value(after_success, "scheduler_job_last_run_success", **job_labels(job)) == 1

    execution_fail(scheduled_run(job, lag_seconds=1), error="boom")
    for status, seconds_ago in ((S.SKIPPED, 2), (S.MISSED, 3)):  # as a claim records them
        ExecutionFactory(
            job=job,
            status=status,
            scheduled_time=timezone.now() - timedelta(seconds=seconds_ago),
            finished_at=timezone.now(),
        )
    job_trigger(job)
    after = scrape(client)
    for status, count in (("success", 1), ("failed", 1), ("skipped", 1), ("missed", 1), ("pending", 1)):
        assert value(after, "scheduler_job_runs", **job_labels(job), status=status) == count, status
    assert value(after, "scheduler_job_last_run_success", **job_labels(job)) == 0
    assert value(after, "scheduler_job_last_run_finished_timestamp_seconds", **job_labels(job)) > 0
    assert value(after, "scheduler_executions_in_progress", status="pending") == 1
    assert value(after, "scheduler_oldest_pending_execution_age_seconds") >= 0


def test_runs_outside_the_window_are_not_counted(client, job):
    execution = scheduled_run(job)
    execution_finish(execution)
    type(execution).objects.filter(pk=execution.pk).update(created_at=timezone.now() - timedelta(hours=2))
    samples = scrape(client)
    assert value(samples, "scheduler_job_runs", **job_labels(job), status="success") is None
    # The latest outcome is not windowed: it is what a "job failing" alert reads.
    assert value(samples, "scheduler_job_last_run_success", **job_labels(job)) == 1


def test_duration_histogram(client, job):
    execution = scheduled_run(job)
    type(execution).objects.filter(pk=execution.pk).update(started_at=timezone.now() - timedelta(seconds=3))
    execution.refresh_from_db()
    execution_finish(execution)
    samples = scrape(client)
    labels = job_labels(job)
    assert value(samples, "scheduler_job_run_duration_seconds_bucket", **labels, le="1.0") == 0
    assert value(samples, "scheduler_job_run_duration_seconds_bucket", **labels, le="5.0") == 1
    assert value(samples, "scheduler_job_run_duration_seconds_bucket", **labels, le="+Inf") == 1
    assert value(samples, "scheduler_job_run_duration_seconds_gcount", **labels) == 1
    assert 3 <= value(samples, "scheduler_job_run_duration_seconds_gsum", **labels) < 10


def test_fire_lag_counts_scheduled_runs_only(client, job):
    scheduled_run(job, lag_seconds=2)
    manual = job_trigger(job)
    type(manual).objects.filter(pk=manual.pk).update(scheduled_time=timezone.now() - timedelta(hours=1))
    execution_start(manual)
    samples = scrape(client)
    # The manual run, an hour "late", is not counted; the scheduled one is 2 s late (plus the
    # time the test takes to start it).
    assert value(samples, "scheduler_fire_lag_seconds_bucket", le="1.0") == 0
    assert value(samples, "scheduler_fire_lag_seconds_bucket", le="5.0") == 1
    assert value(samples, "scheduler_fire_lag_seconds_bucket", le="+Inf") == 1
    assert 2 <= value(samples, "scheduler_fire_lag_max_seconds") < 5
    assert 2 <= value(samples, "scheduler_fire_lag_seconds_gsum") < 5


def test_instances_leases_and_job_states(client, job):
    now = timezone.now()
    SchedulerInstance.objects.create(instance_id="a", hostname="h", pid=1, started_at=now, last_heartbeat=now)
    SchedulerInstance.objects.create(
        instance_id="b", hostname="h", pid=2, started_at=now, last_heartbeat=now, stopped_at=now
    )
    SchedulerInstance.objects.create(
        instance_id="c", hostname="h", pid=3, started_at=now, last_heartbeat=now - timedelta(hours=1)
    )
    live = scheduled_run(job)
    stale = scheduled_run(job, lag_seconds=5)
    JobLease.objects.create(job=job, execution=live, locked_by="a", locked_at=now, expires_at=now + timedelta(hours=1))
    JobLease.objects.create(
        job=job, execution=stale, locked_by="c", locked_at=now, expires_at=now - timedelta(seconds=1)
    )
    job_pause(IntervalJobFactory())
    job_disable(IntervalJobFactory())

    samples = scrape(client)
    assert value(samples, "scheduler_instances_alive") == 1
    assert value(samples, "scheduler_leases_held") == 1
    assert value(samples, "scheduler_leases_expired") == 1
    assert value(samples, "scheduler_executions_in_progress", status="running") == 2
    # The migration's built-in cleanup job is scheduled too.
    assert value(samples, "scheduler_jobs", state="scheduled") == 2
    assert value(samples, "scheduler_jobs", state="paused") == 1
    assert value(samples, "scheduler_jobs", state="disabled") == 1


def test_scrape_cost_does_not_grow_with_jobs_or_history(client, job):
    def queries_for_one_scrape():
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            scrape(client)
        return len(captured)

    small = queries_for_one_scrape()
    for _ in range(15):
        other = IntervalJobFactory()
        execution_finish(scheduled_run(other))
        execution_fail(scheduled_run(other, lag_seconds=1), error="x")
    assert queries_for_one_scrape() == small


def test_database_error_reports_down_instead_of_failing(client, db):
    with mock.patch("scheduler.metrics.SchedulerInstance.objects.alive", side_effect=OperationalError("gone")):
        samples = scrape(client)
    assert value(samples, "scheduler_database_up") == 0
    assert value(samples, "scheduler_instances_alive") is None


def test_openmetrics_on_request(client, job):
    response = client.get("/metrics", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.decode().rstrip().endswith("# EOF")
    assert "# TYPE scheduler_job_run_duration_seconds gaugehistogram" in response.content.decode()


def test_fire_lag_of_a_jittered_run_counts_from_its_planned_start(client, job):
    # Fired 60 s ago but planned (jitter) to start 58 s after that: 2 s late, not 60.
    execution = ExecutionFactory(
        job=job,
        scheduled_time=timezone.now() - timedelta(seconds=60),
        planned_start=timezone.now() - timedelta(seconds=2),
    )
    execution_start(execution, instance_id="host-a")
    samples = scrape(client)
    assert value(samples, "scheduler_fire_lag_seconds_bucket", le="1.0") == 0
    assert value(samples, "scheduler_fire_lag_seconds_bucket", le="5.0") == 1
    assert 2 <= value(samples, "scheduler_fire_lag_max_seconds") < 5

"""/metrics: figures read from the database at scrape time, that move when runs happen."""

import os
import shutil
import subprocess
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
from tests.conftest import service_missing
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


def test_runs_by_status_change_when_runs_happen(client, job):
    before = scrape(client)
    assert value(before, "scheduler_runs", status="success") == 0

    execution_finish(scheduled_run(job))
    after_success = scrape(client)
    assert value(after_success, "scheduler_runs", status="success") == 1
    assert value(after_success, "scheduler_runs_started") == 1

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
    for status in ("success", "failed", "skipped", "missed"):
        assert value(after, "scheduler_runs", status=status) == 1, status
    assert value(after, "scheduler_executions_in_progress", status="pending") == 1
    assert value(after, "scheduler_oldest_pending_execution_age_seconds") >= 0
    # Aggregates only: no series names a job, except the bounded list of failing jobs.
    labelled = {labels for (name, labels) in after if any(key == "job_id" for key, _ in labels)}
    assert {name for name, labels in after if labels in labelled} == {"scheduler_failing_job_runs"}


def test_runs_that_ended_outside_the_window_are_not_counted(client, job):
    long_ago = timezone.now() - timedelta(hours=2)
    ExecutionFactory(job=job, status=S.SUCCESS, started_at=long_ago, finished_at=long_ago, duration_ms=10)
    samples = scrape(client)
    assert value(samples, "scheduler_runs", status="success") == 0
    assert value(samples, "scheduler_runs_started") == 0


def test_duration_histogram(client, job):
    execution = scheduled_run(job)
    type(execution).objects.filter(pk=execution.pk).update(started_at=timezone.now() - timedelta(seconds=3))
    execution.refresh_from_db()
    execution_finish(execution)
    samples = scrape(client)
    assert value(samples, "scheduler_run_duration_seconds_bucket", le="1.0") == 0
    assert value(samples, "scheduler_run_duration_seconds_bucket", le="5.0") == 1
    assert value(samples, "scheduler_run_duration_seconds_bucket", le="+Inf") == 1
    assert value(samples, "scheduler_run_duration_seconds_gcount") == 1
    assert 3 <= value(samples, "scheduler_run_duration_seconds_gsum") < 10


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
    assert value(samples, "scheduler_runs_started") == 2  # both started


def test_failing_jobs_are_named_most_failures_first_and_bounded(client, settings, db):
    settings.SCHEDULER_METRICS_FAILING_JOBS = 2
    jobs = [IntervalJobFactory(name=f"flaky {n}") for n in range(4)]
    for failures, job in zip((1, 3, 2, 0), jobs):
        for n in range(failures):
            execution_fail(scheduled_run(job, lag_seconds=n), error="boom")
        execution_finish(scheduled_run(job, lag_seconds=10))
    samples = scrape(client)
    named = {
        dict(labels)["job_name"]: sample
        for (name, labels), sample in samples.items()
        if name == "scheduler_failing_job_runs"
    }
    assert named == {"flaky 1": 3, "flaky 2": 2}
    assert value(samples, "scheduler_jobs_failing") == 3
    assert value(samples, "scheduler_failing_job_runs", job_id=jobs[1].pk, job_name="flaky 1") == 3


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


def test_scrape_cost_and_size_do_not_grow_with_jobs_or_history(client, job):
    def one_scrape():
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            response = client.get("/metrics")
        return len(captured), len(response.content.decode().splitlines())

    queries, lines = one_scrape()
    for _ in range(15):
        other = IntervalJobFactory()
        execution_finish(scheduled_run(other))
        execution_finish(scheduled_run(other, lag_seconds=1))
    assert one_scrape() == (queries, lines)


def test_database_error_reports_down_instead_of_failing(client, db):
    with mock.patch("scheduler.metrics.SchedulerInstance.objects.alive", side_effect=OperationalError("gone")):
        samples = scrape(client)
    assert value(samples, "scheduler_database_up") == 0
    assert value(samples, "scheduler_instances_alive") is None


def test_openmetrics_on_request(client, job):
    response = client.get("/metrics", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.decode().rstrip().endswith("# EOF")
    assert "# TYPE scheduler_run_duration_seconds gaugehistogram" in response.content.decode()


# --- the bearer token ---------------------------------------------------------------------------


def test_token_when_set_is_required(client, settings, db):
    settings.SCHEDULER_METRICS_TOKEN = "s3cret-token-for-the-scraper"
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"scheduler_" not in missing.content
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Token s3cret-token-for-the-scraper").status_code == 401
    granted = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token-for-the-scraper")
    assert granted.status_code == 200 and b"scheduler_database_up 1.0" in granted.content


def test_no_token_configured_means_no_token_asked(client, settings, db):
    settings.SCHEDULER_METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 200


# --- promtool ---------------------------------------------------------------------------------


def promtool_path() -> str | None:
    for candidate in (os.environ.get("PROMTOOL"), shutil.which("promtool"), "/opt/promtool/usr/bin/promtool"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def test_promtool_finds_nothing_to_lint(client, job):
    promtool = promtool_path()
    if promtool is None:
        service_missing(
            "promtool is not installed",
            "install Debian's prometheus package, or unpack it: apt-get download prometheus && "
            "dpkg-deb -x prometheus_*.deb /opt/promtool (or set PROMTOOL)",
        )
    execution_finish(scheduled_run(job))
    execution_fail(scheduled_run(job, lag_seconds=1), error="boom")
    job_trigger(job)
    text = client.get("/metrics").content
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=60)
    assert result.returncode == 0 and not result.stdout and not result.stderr, result.stdout + result.stderr

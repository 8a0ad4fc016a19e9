"""Several `runscheduler` processes on PostgreSQL: exactly once, nothing lost, leases, reconnects."""

import os
import signal
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from scheduler.models import ExecutionStatus, JobExecution, JobLease, ScheduledJob, TaskFunction
from scheduler.services.jobs import job_trigger
from scheduler.services.leases import LEASE_EXPIRED, leases_reap
from tests.factories import IntervalJobFactory
from tests.scheduler.engine.conftest import wait_until

pytestmark = pytest.mark.postgres

SUSTAINED_JOBS = 40
SUSTAINED_SECONDS = 15


def _sleep_function():
    return TaskFunction.objects.get(name="tasks.functions.sleep")


def test_three_processes_run_every_fire_time_exactly_once_even_when_one_is_killed(postgres, start_scheduler):
    env = {"SCHEDULER_LOCK_TTL": "4"}
    procs = [start_scheduler(env=env) for _ in range(3)]
    # Created once every process runs: jobs waiting through the start-ups would begin with a
    # backlog, whose late runs can still hold their slot at the next fire time and skip it.
    jobs = [IntervalJobFactory(interval_seconds=1, interval_minutes=None) for _ in range(SUSTAINED_JOBS)]
    started = timezone.now()
    wait_until(lambda: timezone.now() - started > timedelta(seconds=SUSTAINED_SECONDS / 2), 60, "first half")
    victim = procs[0]
    assert JobExecution.objects.filter(instance_id__startswith=f"{os.uname().nodename}-{victim.pid}-").exists(), (
        "the process to kill should have taken part"
    )
    os.kill(victim.pid, signal.SIGKILL)
    victim.popen.wait(10)
    wait_until(lambda: timezone.now() - started > timedelta(seconds=SUSTAINED_SECONDS), 60, "second half")
    for proc in procs[1:]:
        assert proc.terminate() == 0, proc.log()
    # Runs the killed process had claimed are failed once their (short) lease expires.
    wait_until(lambda: not JobExecution.objects.unfinished().exists() or _reap(), 30, "no run left unfinished")

    total = 0
    for job in jobs:
        times = list(
            JobExecution.objects.filter(job=job).order_by("scheduled_time").values_list("scheduled_time", flat=True)
        )
        total += len(times)
        duplicates = [t for t, n in Counter(times).items() if n > 1]
        assert not duplicates, f"job {job.pk} ran twice at {duplicates}"
        gaps = [(a, b) for a, b in zip(times, times[1:]) if b - a != timedelta(seconds=1)]
        assert not gaps, f"job {job.pk} has gaps: {gaps[:3]}"
        assert len(times) >= SUSTAINED_SECONDS - 3
    statuses = Counter(JobExecution.objects.values_list("status", flat=True))
    assert set(statuses) <= {ExecutionStatus.SUCCESS, ExecutionStatus.FAILED, ExecutionStatus.SKIPPED}, statuses
    # The only failures are the killed process's runs, once their lease expired; while that
    # lease was live, the same jobs' next runs were skipped (max_instances=1), and only those.
    failed = JobExecution.objects.filter(status=ExecutionStatus.FAILED)
    assert all(e.error_message.startswith(LEASE_EXPIRED) for e in failed)
    skipped_jobs = set(JobExecution.objects.filter(status=ExecutionStatus.SKIPPED).values_list("job_id", flat=True))
    assert skipped_jobs <= set(failed.values_list("job_id", flat=True))
    assert len({i.split("-")[-2] for i in JobExecution.objects.values_list("instance_id", flat=True)}) == 3
    print(f"sustained: {total} runs of {SUSTAINED_JOBS} jobs, statuses {dict(statuses)}")


def _reap():
    leases_reap()
    return False


def test_lease_of_a_killed_process_expires_and_frees_the_slot(postgres, start_scheduler, user):
    job = IntervalJobFactory(
        interval_hours=1,
        interval_minutes=None,
        task_function=_sleep_function(),
        kwargs={"seconds": 60},
        max_instances=1,
    )
    env = {"SCHEDULER_LOCK_TTL": "3"}
    doomed = start_scheduler(env=env)
    first = job_trigger(job, user=user)
    wait_until(lambda: JobExecution.objects.get(pk=first.pk).status == ExecutionStatus.RUNNING, 10, "first run")
    doomed.kill()
    start_scheduler(env=env)
    wait_until(lambda: JobExecution.objects.get(pk=first.pk).status == ExecutionStatus.FAILED, 20, "lease expiry")
    first.refresh_from_db()
    assert first.error_message.startswith(LEASE_EXPIRED)
    ScheduledJob.objects.filter(pk=job.pk).update(kwargs={"seconds": 0})
    second = job_trigger(job, user=user)
    wait_until(lambda: JobExecution.objects.get(pk=second.pk).status == ExecutionStatus.SUCCESS, 10, "slot freed")


def test_long_run_renews_its_lease(postgres, start_scheduler, user):
    job = IntervalJobFactory(
        interval_hours=1, interval_minutes=None, task_function=_sleep_function(), kwargs={"seconds": 7}
    )
    start_scheduler(env={"SCHEDULER_LOCK_TTL": "3"})
    start_scheduler(env={"SCHEDULER_LOCK_TTL": "3"})  # a second process reaping expired leases
    execution = job_trigger(job, user=user)
    wait_until(lambda: JobExecution.objects.get(pk=execution.pk).status not in ("pending", "running"), 30, "run end")
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCESS, execution.error_message


def test_max_instances_holds_across_processes(postgres, start_scheduler):
    job = IntervalJobFactory(
        interval_seconds=1,
        interval_minutes=None,
        task_function=_sleep_function(),
        kwargs={"seconds": 2.5},
        max_instances=2,
    )
    for _ in range(2):
        start_scheduler()
    wait_until(
        lambda: (
            JobExecution.objects.filter(job=job, status="success").count() >= 4
            and JobExecution.objects.filter(job=job, status="skipped").exists()
        ),
        40,
        "overlapping runs",
    )
    spans = list(JobExecution.objects.filter(job=job, status="success").values_list("started_at", "finished_at"))
    for start, _ in spans:
        overlapping = sum(1 for s, f in spans if s <= start < f)
        assert overlapping <= 2, "more than max_instances runs at once"


def test_raw_sql_edit_is_caught_by_the_poll(postgres, start_scheduler):
    job = IntervalJobFactory(interval_hours=1, interval_minutes=None)
    start_scheduler("--poll-interval", "1")
    edited = timezone.now()
    with connection.cursor() as cursor:  # bypasses the services: no notification is sent
        cursor.execute("UPDATE scheduler_scheduledjob SET next_run_time = %s WHERE id = %s", [edited, job.pk])
    run = wait_until(lambda: JobExecution.objects.filter(job=job, status="success").first(), 10, "run after raw edit")
    assert run.started_at - edited < timedelta(seconds=3)


def test_survives_dropped_database_connections(postgres, start_scheduler):
    job = IntervalJobFactory(interval_seconds=1, interval_minutes=None)
    proc = start_scheduler()
    wait_until(lambda: JobExecution.objects.filter(job=job, status="success").exists(), 10, "first run")
    with connection.cursor() as cursor:  # what a PostgreSQL restart does to a client
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    dropped = timezone.now()
    connection.close()
    wait_until(
        lambda: (
            JobExecution.objects.filter(
                job=job, status="success", started_at__gt=dropped + timedelta(seconds=1)
            ).count()
            >= 3
        ),
        30,
        "runs after reconnecting",
    )
    assert proc.popen.poll() is None
    assert "lost its connection" in proc.log()
    # The run in flight when the connection dropped was recorded after reconnecting.
    assert not JobExecution.objects.filter(job=job, scheduled_time__lt=dropped).unfinished().exists()
    times = list(
        JobExecution.objects.filter(job=job).order_by("scheduled_time").values_list("scheduled_time", flat=True)
    )
    assert len(times) == len(set(times))
    assert not JobLease.objects.filter(expires_at__lt=timezone.now()).exists()


@pytest.mark.skipif(
    os.environ.get("SCHEDULER_TEST_RESTART_POSTGRES") != "1",
    reason="restarts the PostgreSQL server for everyone on this machine; .ci/run enables it",
)
def test_survives_a_postgresql_restart(postgres, start_scheduler):
    import subprocess

    job = IntervalJobFactory(interval_seconds=1, interval_minutes=None)
    proc = start_scheduler()
    wait_until(lambda: JobExecution.objects.filter(job=job, status="success").exists(), 10, "first run")
    version = sorted(os.listdir("/etc/postgresql"))[0]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True, timeout=120)
    connection.close()
    restarted = timezone.now()
    wait_until(
        lambda: JobExecution.objects.filter(job=job, status="success", started_at__gt=restarted).count() >= 3,
        60,
        "runs after the restart",
    )
    assert proc.popen.poll() is None
    times = list(JobExecution.objects.filter(job=job).values_list("scheduled_time", flat=True))
    assert len(times) == len(set(times))

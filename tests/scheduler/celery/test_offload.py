"""Offloaded runs on a real Celery worker with a real Redis broker."""

import shutil
import socket
import subprocess

from django_celery_results.models import TaskResult

from scheduler.models import ExecutionStatus, JobExecution, TaskFunction
from scheduler.services.jobs import job_trigger
from scheduler.services.leases import LEASE_EXPIRED
from tests.conftest import service_missing
from tests.factories import IntervalJobFactory
from tests.scheduler.engine.conftest import wait_until


def _job(name, **kwargs):
    function = TaskFunction.objects.get(name=name)
    return IntervalJobFactory(interval_hours=1, interval_minutes=None, task_function=function, **kwargs)


def _finished(execution_id):
    execution = JobExecution.objects.get(pk=execution_id)
    return execution if execution.status not in ("pending", "running") else None


def test_offloaded_run_end_to_end(start_scheduler, start_worker, celery_env, user):
    worker = start_worker()
    start_scheduler(env=celery_env)
    ok = _job("tasks.functions.sleep_offloaded", kwargs={"seconds": 0.2})
    bad = _job("tests.task_functions.fail_offloaded", kwargs={"message": "disk full"})
    done = job_trigger(ok, user=user)
    failed = job_trigger(bad, user=user)

    done = wait_until(lambda: _finished(done.pk), 30, "offloaded run finished")
    assert done.status == ExecutionStatus.SUCCESS, done.error_message
    assert done.result == {"slept": 0.2}
    assert done.hostname.startswith(celery_env["SCHEDULER_DEFAULT_QUEUE"] + "@")
    assert done.celery_task_id
    # The execution is finished inside the task; Celery records the task's own end just after it.
    record = wait_until(
        lambda: (
            TaskResult.objects.filter(task_id=done.celery_task_id).exclude(status__in=["PENDING", "STARTED"]).first()
        ),
        10,
        "TaskResult of the finished task",
    )
    assert record.status == "SUCCESS"

    failed = wait_until(lambda: _finished(failed.pk), 30, "failing offloaded run finished")
    assert failed.status == ExecutionStatus.FAILED
    assert failed.error_message == "RuntimeError: disk full"
    assert "Traceback" in failed.traceback and "fail_offloaded" in failed.traceback
    assert "succeeded" in worker.log() or "Task scheduler.run_offloaded" in worker.log()


def test_higher_priority_runs_first_on_a_single_worker(start_scheduler, start_worker, celery_env, user):
    start_scheduler(env=celery_env)
    blocker = _job("tests.task_functions.record_order", kwargs={"label": "blocker", "seconds": 3})
    jobs = {
        p: _job("tests.task_functions.record_order", priority=p, kwargs={"label": f"p{p}", "seconds": 0.1})
        for p in (1, 5, 9)
    }
    start_worker()
    first = job_trigger(blocker, user=user)
    wait_until(lambda: JobExecution.objects.get(pk=first.pk).status == ExecutionStatus.RUNNING, 30, "blocker running")
    for priority in (1, 9, 5):  # queued while the only worker process is busy
        job_trigger(jobs[priority], user=user)
    wait_until(
        lambda: JobExecution.objects.filter(job__in=jobs.values(), status="success").count() == 3,
        60,
        "queued runs finished",
    )
    order = [e.job.priority for e in JobExecution.objects.filter(job__in=jobs.values()).order_by("started_at")]
    assert order == [9, 5, 1]


def test_timeout_ends_the_run_timed_out_with_the_reason(start_scheduler, start_worker, celery_env, user):
    start_worker()
    start_scheduler(env=celery_env)
    job = _job("tests.task_functions.sleep_with_timeout", kwargs={"seconds": 30})
    execution = job_trigger(job, user=user)
    execution = wait_until(lambda: _finished(execution.pk), 30, "timed-out run finished")
    assert execution.status == ExecutionStatus.TIMED_OUT
    assert execution.error_message.startswith("timed out")
    assert "2s" in execution.error_message


def test_worker_killed_mid_run_is_failed_and_frees_the_slot(start_scheduler, start_worker, celery_env, user):
    env = {**celery_env, "SCHEDULER_LOCK_TTL": "4"}
    worker = start_worker(extra_env={"SCHEDULER_LOCK_TTL": "4"})
    start_scheduler(env=env)
    job = _job("tasks.functions.sleep_offloaded", kwargs={"seconds": 60})
    execution = job_trigger(job, user=user)
    wait_until(lambda: JobExecution.objects.get(pk=execution.pk).status == ExecutionStatus.RUNNING, 30, "run started")
    worker.kill_all()
    execution = wait_until(lambda: _finished(execution.pk), 30, "killed run failed")
    assert execution.status == ExecutionStatus.FAILED
    assert execution.error_message.startswith(LEASE_EXPIRED)
    # The slot is free: a new run on a new worker is not skipped, and runs once.
    start_worker(extra_env={"SCHEDULER_LOCK_TTL": "4"})
    type(job).objects.filter(pk=job.pk).update(kwargs={"seconds": 0})
    second = job_trigger(job, user=user)
    second = wait_until(lambda: _finished(second.pk), 30, "next run")
    assert second.status == ExecutionStatus.SUCCESS
    # The killed run was not executed a second time by the new worker.
    assert JobExecution.objects.get(pk=execution.pk).status == ExecutionStatus.FAILED


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_broker_stopped_while_scheduler_runs(start_scheduler, celery_env, tmp_path, user):
    if not (shutil.which("redis-server") and shutil.which("redis-cli")):
        service_missing(
            "redis-server is not installed (this test runs a private broker and stops it)",
            "install Debian's: apt-get install redis-server",
        )
    # A free port, not a fixed one: other test runs on this machine may run this test at the same time.
    port = _free_port()
    broker = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        env = {**celery_env, "CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/0"}
        wait_until(
            lambda: subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).returncode == 0,
            10,
            "private broker up",
        )
        proc = start_scheduler(env=env)
        broker.terminate()
        broker.wait(10)
        offloaded = _job("tasks.functions.sleep_offloaded", kwargs={"seconds": 0})
        inline = _job("tasks.functions.noop")
        sent = job_trigger(offloaded, user=user)
        sent = wait_until(lambda: _finished(sent.pk), 60, "send failure recorded")
        assert sent.status == ExecutionStatus.FAILED
        assert "could not send the run to the Celery broker" in sent.error_message
        # The scheduler carries on with everything else.
        still = job_trigger(inline, user=user)
        assert wait_until(lambda: _finished(still.pk), 30, "inline run").status == ExecutionStatus.SUCCESS
        assert proc.popen.poll() is None
    finally:
        if broker.poll() is None:
            broker.kill()


def test_without_a_broker_offloaded_runs_in_the_scheduler_process(start_scheduler, user):
    start_scheduler(env={"CELERY_BROKER_URL": ""})
    job = _job("tasks.functions.sleep_offloaded", kwargs={"seconds": 0.1})
    execution = job_trigger(job, user=user)
    execution = wait_until(lambda: _finished(execution.pk), 30, "in-process offloaded run")
    assert execution.status == ExecutionStatus.SUCCESS
    assert execution.result == {"slept": 0.1}
    assert execution.celery_task_id

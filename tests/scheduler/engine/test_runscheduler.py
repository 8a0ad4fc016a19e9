"""`runscheduler` as a real process: runs, manual triggers, edits seen live, clean stop, SQLite guard."""

import subprocess
import sys
from datetime import timedelta

from django.utils import timezone

from scheduler.models import ExecutionStatus, JobExecution, JobLease, ScheduledJob, SchedulerInstance, TaskFunction
from scheduler.services.jobs import job_disable, job_enable, job_pause, job_resume, job_trigger, job_update
from tests.factories import IntervalJobFactory
from tests.scheduler.engine.conftest import MANAGE, wait_until


def _function(name):
    return TaskFunction.objects.get(name=f"tasks.functions.{name}")


def _runs(job, **filters):
    return JobExecution.objects.filter(job=job, **filters)


def test_interval_job_runs_on_its_grid_and_records_outcomes(start_scheduler):
    ok = IntervalJobFactory(interval_seconds=1, interval_minutes=None)
    failing = IntervalJobFactory(
        interval_seconds=1, interval_minutes=None, task_function=_function("fail"), kwargs={"message": "boom"}
    )
    start_scheduler()
    wait_until(lambda: _runs(ok, status="success").count() >= 3, 20, "three successful runs")
    wait_until(lambda: _runs(failing, status="failed").exists(), 20, "a failed run")
    failed = _runs(failing, status="failed").first()
    assert failed.error_message == "TaskFunctionFailure: boom"
    assert "Traceback" in failed.traceback
    times = list(_runs(ok).order_by("scheduled_time").values_list("scheduled_time", flat=True))
    assert all(b - a == timedelta(seconds=1) for a, b in zip(times, times[1:]))
    run = _runs(ok, status="success").first()
    assert run.instance_id and run.hostname and run.duration_ms is not None


def test_manual_trigger_starts_within_a_second(start_scheduler, user):
    job = IntervalJobFactory(interval_hours=1, interval_minutes=None)
    start_scheduler()
    execution = job_trigger(job, user=user)
    wait_until(lambda: JobExecution.objects.get(pk=execution.pk).status == ExecutionStatus.SUCCESS, 10, "manual run")
    execution.refresh_from_db()
    assert execution.triggered_by == user
    assert execution.started_at - execution.created_at < timedelta(seconds=1)


def test_changes_reach_a_running_process(start_scheduler):
    job = IntervalJobFactory(interval_hours=1, interval_minutes=None)
    start_scheduler()
    edited_at = timezone.now()
    job = job_update(job, interval_hours=None, interval_seconds=1)
    first = wait_until(lambda: _runs(job).order_by("started_at").first(), 10, "first run after the edit")
    assert first.scheduled_time - edited_at < timedelta(seconds=2)

    job_pause(job, reason="maintenance")
    paused_at = timezone.now()
    wait_until(lambda: timezone.now() - paused_at > timedelta(seconds=2.5), 5, "time to pass")
    assert not _runs(job, scheduled_time__gt=paused_at + timedelta(seconds=1)).exists()

    job_resume(job)
    resumed_at = timezone.now()
    wait_until(lambda: _runs(job, scheduled_time__gte=resumed_at).exists(), 10, "a run after resume")
    # No catch-up of the paused period.
    assert not _runs(job, scheduled_time__gt=paused_at + timedelta(seconds=1), scheduled_time__lt=resumed_at).exists()

    job_disable(job)
    disabled_at = timezone.now()
    wait_until(lambda: timezone.now() - disabled_at > timedelta(seconds=2.5), 5, "time to pass")
    assert not _runs(job, scheduled_time__gt=disabled_at + timedelta(seconds=1)).exists()
    job_enable(job)
    enabled_at = timezone.now()
    wait_until(lambda: _runs(job, scheduled_time__gte=enabled_at).exists(), 10, "a run after enable")


def test_misfire_and_coalesce_after_downtime(start_scheduler):
    now = timezone.now()
    coalesced = IntervalJobFactory(interval_seconds=10, interval_minutes=None, coalesce=True, misfire_grace_time=300)
    each = IntervalJobFactory(
        interval_seconds=10, interval_minutes=None, coalesce=False, misfire_grace_time=35, max_instances=10
    )
    too_late = IntervalJobFactory(interval_hours=1, interval_minutes=None, coalesce=True, misfire_grace_time=30)
    # As the database holds it after every scheduler was down for a while.
    ScheduledJob.objects.filter(pk__in=[coalesced.pk, each.pk]).update(next_run_time=now - timedelta(seconds=95))
    ScheduledJob.objects.filter(pk=too_late.pk).update(next_run_time=now - timedelta(minutes=10))
    start_scheduler()
    wait_until(
        lambda: (
            _runs(too_late).exists()
            and _runs(coalesced, status="success").exists()
            and _runs(each, scheduled_time__lt=now).unfinished().count() == 0
            and _runs(each, scheduled_time__lt=now).count() >= 10
        ),
        20,
        "overdue runs handled",
    )
    scheduler_gone = now + timedelta(seconds=5)  # runs before this are the catch-up ones
    assert _runs(coalesced, scheduled_time__lt=scheduler_gone).count() == 1
    assert _runs(coalesced, scheduled_time__lt=scheduler_gone).get().status == ExecutionStatus.SUCCESS
    catch_up = _runs(each, scheduled_time__lt=now)
    assert catch_up.count() == 10
    assert catch_up.filter(status=ExecutionStatus.MISSED).count() >= 5
    assert catch_up.filter(status=ExecutionStatus.SUCCESS).count() >= 2
    missed = _runs(too_late).get()
    assert missed.status == ExecutionStatus.MISSED
    assert "misfire grace time" in missed.error_message
    too_late.refresh_from_db()
    assert too_late.next_run_time > now


def test_max_instances_skips_overlapping_runs(start_scheduler):
    job = IntervalJobFactory(
        interval_seconds=1,
        interval_minutes=None,
        task_function=_function("sleep"),
        kwargs={"seconds": 2.5},
        max_instances=1,
    )
    start_scheduler()
    wait_until(
        lambda: _runs(job, status="skipped").count() >= 2 and _runs(job, status="success").exists(),
        30,
        "skipped and finished runs",
    )
    skipped = _runs(job, status="skipped").first()
    assert "max_instances (1)" in skipped.error_message
    spans = list(_runs(job, status="success").values_list("started_at", "finished_at"))
    spans.sort()
    assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:])), "runs overlapped"


def test_sigterm_lets_inline_run_finish_and_exits_cleanly(start_scheduler, user):
    job = IntervalJobFactory(
        interval_hours=1, interval_minutes=None, task_function=_function("sleep"), kwargs={"seconds": 2}
    )
    proc = start_scheduler()
    execution = job_trigger(job, user=user)
    wait_until(lambda: JobExecution.objects.get(pk=execution.pk).status == ExecutionStatus.RUNNING, 10, "run started")
    assert proc.terminate() == 0, proc.log()
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCESS
    assert not JobLease.objects.exists()
    assert SchedulerInstance.objects.get().stopped_at is not None
    assert "stopped" in proc.log()


def test_sigterm_fails_run_that_outlives_shutdown_timeout(start_scheduler, user):
    job = IntervalJobFactory(
        interval_hours=1, interval_minutes=None, task_function=_function("sleep"), kwargs={"seconds": 30}
    )
    proc = start_scheduler("--shutdown-timeout", "1")
    execution = job_trigger(job, user=user)
    wait_until(lambda: JobExecution.objects.get(pk=execution.pk).status == ExecutionStatus.RUNNING, 10, "run started")
    assert proc.terminate() == 0, proc.log()
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    assert "stopped before the run finished" in execution.error_message
    assert not JobLease.objects.exists()


def test_sigterm_gives_back_a_queued_run_that_never_started_and_another_process_runs_it(start_scheduler, user):
    slow = IntervalJobFactory(
        interval_hours=1, interval_minutes=None, task_function=_function("sleep"), kwargs={"seconds": 30}
    )
    quick = IntervalJobFactory(interval_hours=1, interval_minutes=None, task_function=_function("noop"))
    proc = start_scheduler("--workers", "1", "--shutdown-timeout", "1")
    running = job_trigger(slow, user=user)
    wait_until(
        lambda: JobExecution.objects.get(pk=running.pk).status == ExecutionStatus.RUNNING, 10, "slow run started"
    )
    queued = job_trigger(quick, user=user)  # claimed, but waits behind the slow run for the one worker
    wait_until(lambda: JobExecution.objects.get(pk=queued.pk).instance_id, 10, "queued run claimed")
    assert proc.terminate() == 0, proc.log()
    queued.refresh_from_db()
    assert (queued.status, queued.instance_id, queued.started_at) == (ExecutionStatus.PENDING, "", None)
    assert not JobLease.objects.filter(execution=queued).exists()
    start_scheduler()
    wait_until(
        lambda: JobExecution.objects.get(pk=queued.pk).status == ExecutionStatus.SUCCESS, 15, "given-back run ran"
    )


def test_function_removed_from_code_refuses_to_run(start_scheduler):
    job = IntervalJobFactory(interval_seconds=1, interval_minutes=None)
    # A function that was registered once and has since been deleted from the code.
    removed = TaskFunction.objects.create(name="tasks.functions.removed_since")
    ScheduledJob.objects.filter(pk=job.pk).update(task_function=removed)
    start_scheduler()  # syncs the registry on start: the row becomes inactive
    removed.refresh_from_db()
    assert removed.is_active is False
    run = wait_until(lambda: _runs(job, status="failed").first(), 15, "a refused run")
    assert "inactive" in run.error_message
    assert run.started_at is None


def test_help_documents_options():
    result = subprocess.run(
        [sys.executable, str(MANAGE), "runscheduler", "--help"], capture_output=True, text=True, check=True
    )
    for option in ("--workers", "--poll-interval", "--heartbeat-interval", "--shutdown-timeout"):
        assert option in result.stdout


def test_bad_option_is_a_usage_error():
    result = subprocess.run(
        [sys.executable, str(MANAGE), "runscheduler", "--workers", "zero"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "--workers" in result.stderr


def test_second_process_on_sqlite_refuses_to_start(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'single.sqlite3'}",
        "PYTHONUNBUFFERED": "1",
    }
    subprocess.run([sys.executable, str(MANAGE), "migrate", "-v0"], env=env, check=True, cwd=MANAGE.parent)
    log = open(tmp_path / "first.log", "w")
    first = subprocess.Popen(
        [sys.executable, str(MANAGE), "runscheduler"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=MANAGE.parent
    )
    try:
        wait_until(lambda: " started: " in (tmp_path / "first.log").read_text(), 30, "first scheduler")
        second = subprocess.run(
            [sys.executable, str(MANAGE), "runscheduler"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=MANAGE.parent,
        )
        assert second.returncode != 0
        assert "Another scheduler process is already running" in second.stderr
    finally:
        first.kill()
        first.wait()
        log.close()

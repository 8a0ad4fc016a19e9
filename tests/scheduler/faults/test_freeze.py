"""Fault 4: a frozen process (SIGSTOP; a VM pause or a long GC pause does the same to it).

While it is frozen its leases expire and another process fails its runs ("lease expired"). When it
wakes up it must not undo that: the run it was executing stays failed, and the runs it had claimed
but not started are never started by it. Whether a function was really called is read from a file
the task function writes (task_functions.marked_sleep), not from the engine's records.

The long runs last until the test releases them (a file), so a slow machine cannot end them before
the freeze; what must hold before the freeze is checked right before it.
"""

from datetime import timedelta

import pytest

from scheduler.models import ExecutionStatus, JobExecution, SchedulerInstance
from scheduler.services.jobs import job_trigger
from scheduler.services.leases import LEASE_EXPIRED
from tests.factories import IntervalJobFactory
from tests.scheduler.faults.conftest import (
    TASK_MODULES,
    db_now,
    instance_of,
    log_since,
    marks,
    task_function,
    wait_until,
)

pytestmark = pytest.mark.postgres

LOCK_TTL = 5  # heartbeats every second renew it: a loaded machine does not lose a lease by accident
ENV = {"SCHEDULER_TASK_MODULES": TASK_MODULES, "SCHEDULER_LOCK_TTL": str(LOCK_TTL)}
REAPED_WITHIN = LOCK_TTL + 15


def _job(marks_file, label, seconds=0, release=None):
    kwargs = {"path": str(marks_file), "seconds": seconds, "label": label}
    if release:
        kwargs["release"] = str(release)
    return IntervalJobFactory(
        task_function=task_function("marked_sleep"), interval_hours=1, interval_minutes=None, kwargs=kwargs
    )


def _row(execution) -> JobExecution:
    return JobExecution.objects.get(pk=execution.pk)


def _record(execution) -> tuple:
    row = _row(execution)
    return row.status, row.started_at, row.instance_id, row.finished_at, row.error_message


def _awake_again(proc, since):
    """The woken process heartbeats again (on the database's clock) after `since`."""
    row = instance_of(proc)
    wait_until(
        lambda: SchedulerInstance.objects.get(pk=row.pk).last_heartbeat > since,
        20,
        f"pid {proc.pid} heartbeating again after SIGCONT",
    )


def test_a_run_reaped_while_its_process_was_frozen_stays_failed(postgres, start_scheduler, freezer, tmp_path, user):
    marks_file, release = tmp_path / "marks.txt", tmp_path / "release"
    victim = start_scheduler("--workers", "2", env=ENV)
    long_job = _job(marks_file, "long", seconds=120, release=release)
    run = job_trigger(long_job, user=user)
    wait_until(lambda: _row(run).status == "running", 20, "the long run running in the process to freeze")
    reaper = start_scheduler("--workers", "2", env=ENV)

    assert _record(run)[0] == "running" and _row(run).instance_id == instance_of(victim).instance_id
    freezer.freeze(victim)
    reaped = wait_until(
        lambda: JobExecution.objects.filter(pk=run.pk).exclude(status="running").first(),
        REAPED_WITHIN,
        "the frozen process's run failed by the other process once its lease expired",
    )
    assert reaped.status == ExecutionStatus.FAILED and reaped.error_message.startswith(LEASE_EXPIRED), (
        reaped.status,
        reaped.error_message,
    )
    left_by_reaper = _record(run)

    release.touch()  # the function returns as soon as its process runs again
    log_mark = len(victim.log())
    woke = db_now()
    freezer.thaw(victim)
    _awake_again(victim, woke)
    wait_until(lambda: [e for e in marks(marks_file) if e["event"] == "end"], 20, "the frozen run's function to end")
    # Its end reaches the recorder, which writes within 50 ms: wait for its log line (or 3 s).
    ended = db_now()
    wait_until(
        lambda: f"run job={long_job.pk} " in log_since(victim, log_mark) or db_now() > ended + timedelta(seconds=3),
        20,
        "the woken process to have dealt with the run's end",
    )

    after = _record(run)
    assert after[0] == ExecutionStatus.FAILED, f"the reaped run became {after[0]} when its process woke up"
    assert after == left_by_reaper, "the woken process rewrote the run the other process had failed"
    stopped = {"victim": victim.terminate(), "reaper": reaper.terminate()}
    assert stopped == {"victim": 0, "reaper": 0}, victim.log()[-3000:]


def test_runs_claimed_before_a_freeze_are_not_started_after_it(postgres, start_scheduler, freezer, tmp_path, user):
    marks_file, release = tmp_path / "marks.txt", tmp_path / "release"
    # One worker thread: the long run occupies it, the other runs wait claimed in its queue.
    victim = start_scheduler("--workers", "1", env=ENV)
    victim_id = instance_of(victim).instance_id
    busy = job_trigger(_job(marks_file, "busy", seconds=120, release=release), user=user)
    wait_until(lambda: _row(busy).status == "running", 20, "the long run running")
    queued = [job_trigger(_job(marks_file, f"queued{n}"), user=user) for n in range(3)]
    wait_until(
        lambda: JobExecution.objects.filter(pk__in=[e.pk for e in queued], instance_id=victim_id).count() == 3,
        20,
        "the queued runs claimed by the process to freeze",
    )
    reaper = start_scheduler("--workers", "2", env=ENV)

    assert _row(busy).status == "running"
    assert [_record(e)[:3] for e in queued] == [("pending", None, victim_id)] * 3, "queued runs should wait, claimed"
    freezer.freeze(victim)
    ids = [busy.pk, *[e.pk for e in queued]]
    wait_until(
        lambda: not JobExecution.objects.filter(pk__in=ids, status__in=["pending", "running"]).exists(),
        REAPED_WITHIN,
        "every run of the frozen process failed by the other one once their leases expired",
    )
    left_by_reaper = {e.pk: _record(e) for e in queued}
    assert all(r[0] == ExecutionStatus.FAILED and r[4].startswith(LEASE_EXPIRED) for r in left_by_reaper.values()), (
        left_by_reaper
    )
    # From here only the frozen process could run anything: the reaper stops (cleanly) first.
    assert reaper.terminate() == 0, reaper.log()[-3000:]

    release.touch()
    woke = db_now()
    freezer.thaw(victim)
    _awake_again(victim, woke)
    # A run triggered now queues behind the claimed ones in the single worker's queue: once it has
    # run, the woken process has dealt with every run it held.
    probe = job_trigger(_job(marks_file, "probe"), user=user)
    wait_until(lambda: _row(probe).status == "success", 30, "a new run in the woken process")

    started_by_victim = [e["label"] for e in marks(marks_file) if e["event"] == "start" and e["pid"] == str(victim.pid)]
    assert not [label for label in started_by_victim if label.startswith("queued")], (
        f"the woken process started runs the other process had failed: {started_by_victim}"
    )
    assert sorted(started_by_victim) == ["busy", "probe"], started_by_victim
    assert {e.pk: _record(e) for e in queued} == left_by_reaper, "the woken process rewrote runs already failed"
    assert _row(busy).status == ExecutionStatus.FAILED
    assert victim.terminate() == 0, victim.log()[-3000:]

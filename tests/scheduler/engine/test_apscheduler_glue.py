"""The APScheduler internals the engine relies on (engine/apscheduler_glue.py): an upgrade that
changes any of them fails here, not in production."""

import inspect
import threading
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import apscheduler
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from apscheduler.executors.base import BaseExecutor, run_job
from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

from scheduler.engine.apscheduler_glue import APSCHEDULER_SERIES, APSCHEDULER_THREAD, ClaimedRunJob, RunQueueExecutor

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def claimed_run(execution_id=7):
    return SimpleNamespace(execution_id=execution_id, job_name="report", scheduled_time=AT)


def dispatch(run):
    return run.execution_id


def test_written_for_this_apscheduler_series():
    assert apscheduler.__version__.startswith(APSCHEDULER_SERIES)


def test_a_claimed_run_job_sets_every_field_a_job_has():
    job = ClaimedRunJob(BackgroundScheduler(), "default", dispatch, claimed_run(), AT)
    slots = {name for name in Job.__slots__ if name != "__weakref__"}
    assert all(hasattr(job, name) for name in slots), sorted(n for n in slots if not hasattr(job, n))


def test_a_claimed_run_job_is_the_job_apschedulers_own_constructor_builds():
    scheduler = BackgroundScheduler()
    ours = ClaimedRunJob(scheduler, "default", dispatch, claimed_run(), AT)
    public = Job(
        scheduler,
        id=ours.id,
        name=ours.name,
        func=dispatch,
        args=(claimed_run(),),
        kwargs={},
        trigger=DateTrigger(run_date=AT, timezone=UTC),
        executor="default",
        misfire_grace_time=None,
        coalesce=False,
        max_instances=1,
        next_run_time=AT,
    )
    public._jobstore_alias = "default"
    for name in set(Job.__slots__) - {"__weakref__", "args", "trigger", "func_ref"}:
        assert getattr(ours, name) == getattr(public, name), name
    assert ours.args[0].execution_id == public.args[0].execution_id
    assert ours.trigger.run_date == public.trigger.run_date
    assert ours._get_run_times(AT) == public._get_run_times(AT) == [AT]


def test_the_background_scheduler_loops_in_the_thread_the_engine_names():
    scheduler = BackgroundScheduler()
    scheduler.start()
    try:
        assert scheduler._thread.name == APSCHEDULER_THREAD
    finally:
        scheduler.shutdown(wait=False)


def test_the_executor_hooks_keep_their_signatures():
    assert list(inspect.signature(run_job).parameters) == ["job", "jobstore_alias", "run_times", "logger_name"]
    assert list(inspect.signature(BaseExecutor._run_job_success).parameters) == ["self", "job_id", "events"]
    assert list(inspect.signature(BaseExecutor._run_job_error).parameters) == ["self", "job_id", "exc", "traceback"]
    assert list(inspect.signature(BaseExecutor._do_submit_job).parameters) == ["self", "job", "run_times"]


def test_the_executor_runs_a_claimed_run_and_reports_it_like_apschedulers_own():
    scheduler = BackgroundScheduler()
    events = []
    done = threading.Event()

    def listen(event):
        events.append(event)
        done.set()

    scheduler.add_listener(listen, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    executor = RunQueueExecutor(workers=2)
    executor.start(scheduler, "default")
    try:
        executor.submit_job(ClaimedRunJob(scheduler, "default", dispatch, claimed_run(42), AT), [AT])
        assert done.wait(10), "the run was never reported"
    finally:
        executor.shutdown(wait=True)
    [event] = events
    assert event.code == EVENT_JOB_EXECUTED and event.retval == 42 and event.job_id == "execution-42"


def test_the_executor_holds_a_run_claimed_ahead_until_its_time_and_starts_same_moment_runs_in_order():
    scheduler = BackgroundScheduler()
    started = []
    all_started = threading.Event()

    def record(run):
        started.append((run.execution_id, time.time()))
        if len(started) == 3:
            all_started.set()

    executor = RunQueueExecutor(workers=1)
    executor.start(scheduler, "default")
    starts_at = time.time() + 0.5
    try:
        for execution_id in (1, 2):
            executor.submit_job(
                ClaimedRunJob(scheduler, "default", record, claimed_run(execution_id), AT, starts_at), [AT]
            )
        executor.submit_job(ClaimedRunJob(scheduler, "default", record, claimed_run(3), AT), [AT])
        assert all_started.wait(10), "a timed run never started"
    finally:
        executor.shutdown(wait=True)
    assert [pk for pk, _ in started] == [3, 1, 2], "the untimed run first, then the timed ones in order"
    assert all(at >= starts_at for pk, at in started if pk != 3), "a timed run started before its time"


def test_the_executor_hands_over_timed_runs_at_shutdown_for_the_process_to_turn_away():
    scheduler = BackgroundScheduler()
    seen = []
    executor = RunQueueExecutor(workers=1)
    executor.start(scheduler, "default")
    executor.submit_job(
        ClaimedRunJob(
            scheduler, "default", lambda run: seen.append(run.execution_id), claimed_run(5), AT, time.time() + 60
        ),
        [AT],
    )
    executor.shutdown(wait=True)
    assert seen == [5], "a run held for later must reach dispatch (which refuses it once the process stops)"

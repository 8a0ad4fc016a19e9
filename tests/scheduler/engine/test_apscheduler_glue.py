"""The APScheduler internals the engine relies on (engine/apscheduler_glue.py): an upgrade that
changes any of them fails here, not in production."""

import inspect
import threading
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

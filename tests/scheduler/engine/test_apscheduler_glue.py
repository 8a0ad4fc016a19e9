"""The APScheduler internals the engine relies on (engine/apscheduler_glue.py), and its executor:
an upgrade that changes any of them fails here, not in production."""

import inspect
import threading
import time
from types import SimpleNamespace

import apscheduler
import pytest
from apscheduler.executors.base import BaseExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from scheduler.engine.apscheduler_glue import APSCHEDULER_SERIES, APSCHEDULER_THREAD, RunQueueExecutor


def claimed_run(execution_id=7):
    return SimpleNamespace(execution_id=execution_id)


def test_written_for_this_apscheduler_series():
    assert apscheduler.__version__.startswith(APSCHEDULER_SERIES)


def test_the_background_scheduler_loops_in_the_thread_the_engine_names():
    scheduler = BackgroundScheduler()
    scheduler.start()
    try:
        assert scheduler._thread.name == APSCHEDULER_THREAD
    finally:
        scheduler.shutdown(wait=False)


def test_the_executor_implements_the_abstract_hook_apscheduler_declares():
    assert "_do_submit_job" in BaseExecutor.__abstractmethods__
    assert list(inspect.signature(BaseExecutor._do_submit_job).parameters) == ["self", "job", "run_times"]
    RunQueueExecutor(workers=1, dispatch=print)  # instantiable: no abstract method left


def _executor(dispatch, workers=1, tick=0.0) -> RunQueueExecutor:
    executor = RunQueueExecutor(workers=workers, dispatch=dispatch, tick=tick)
    executor.start(BackgroundScheduler(), "default")
    return executor


def test_the_executor_runs_submitted_runs_in_their_order():
    seen, done = [], threading.Event()

    def dispatch(run):
        seen.append(run.execution_id)
        if len(seen) == 3:
            done.set()

    executor = _executor(dispatch)
    try:
        executor.runs_submit([(None, claimed_run(n)) for n in (3, 1, 2)])
        assert done.wait(10), "the runs were never dispatched"
    finally:
        executor.shutdown(wait=True)
    assert seen == [3, 1, 2]


def test_a_run_whose_dispatch_raises_does_not_stop_its_worker(caplog):
    seen, done = [], threading.Event()

    def dispatch(run):
        if run.execution_id == 1:
            raise SystemExit("a task function exiting the interpreter")
        seen.append(run.execution_id)
        done.set()

    executor = _executor(dispatch)
    try:
        executor.runs_submit([(None, claimed_run(1)), (None, claimed_run(2))])
        assert done.wait(10), "the worker stopped after a failed dispatch"
    finally:
        executor.shutdown(wait=True)
    assert seen == [2]
    assert "Dispatching run" in caplog.text


def test_the_executor_holds_a_run_claimed_ahead_until_its_time_and_starts_same_moment_runs_in_order():
    started = []
    all_started = threading.Event()

    def record(run):
        started.append((run.execution_id, time.time()))
        if len(started) == 3:
            all_started.set()

    executor = _executor(record)
    starts_at = time.time() + 0.5
    try:
        executor.runs_submit([(starts_at, claimed_run(1)), (starts_at, claimed_run(2)), (None, claimed_run(3))])
        assert all_started.wait(10), "a timed run never started"
    finally:
        executor.shutdown(wait=True)
    assert [pk for pk, _ in started] == [3, 1, 2], "the untimed run first, then the timed ones in order"
    assert all(at >= starts_at for pk, at in started if pk != 3), "a timed run started before its time"


def test_a_sooner_run_submitted_later_wakes_the_timer_for_its_own_time():
    started = {}
    done = threading.Event()

    def record(run):
        started[run.execution_id] = time.time()
        done.set()

    executor = _executor(record)
    try:
        executor.runs_submit([(time.time() + 60, claimed_run(1))])
        soon = time.time() + 0.3
        executor.runs_submit([(soon, claimed_run(2))])
        assert done.wait(10), "the sooner run waited behind the later one"
    finally:
        executor.shutdown(wait=True)
    assert started[2] >= soon


def test_with_a_tick_runs_due_close_together_are_handed_over_together_and_none_before_its_time():
    started = {}
    done = threading.Event()

    def record(run):
        started[run.execution_id] = time.time()
        if len(started) == 3:
            done.set()

    tick = 0.3
    executor = _executor(record, workers=3, tick=tick)
    first = time.time() + 0.3
    times = {1: first, 2: first + 0.05, 3: first + 0.1}
    try:
        executor.runs_submit([(at, claimed_run(pk)) for pk, at in times.items()])
        assert done.wait(10), "a timed run never started"
    finally:
        executor.shutdown(wait=True)
    assert all(started[pk] >= at for pk, at in times.items()), "a run started before its time"
    # The first wake hands over the first; the next comes a tick later, with both that are due by then.
    assert started[3] - started[2] < 0.1 < started[2] - started[1], started
    assert started[2] >= started[1] + tick - 0.02


def test_the_executor_hands_over_timed_runs_at_shutdown_for_the_process_to_turn_away():
    seen = []
    executor = _executor(lambda run: seen.append(run.execution_id))
    executor.runs_submit([(time.time() + 60, claimed_run(5))])
    executor.shutdown(wait=True)
    assert seen == [5], "a run held for later must reach dispatch (which refuses it once the process stops)"


def test_apscheduler_never_submits_jobs_to_it():
    with pytest.raises(NotImplementedError):
        RunQueueExecutor(workers=1, dispatch=print)._do_submit_job(None, [])

"""The run context a task function sees (scheduler.registry.current_run): cancel requests and
timeouts that a cooperative function (polling cancel_requested, or sleeping through sleep()) obeys,
and the shipped sleep functions, which do."""

import threading
import time

import pytest

from scheduler.registry import RunCancelled, RunContext, current_run, run_cancel, run_context, runs_in_progress
from tasks import functions


def cancel_soon(execution_id, reason="cancelled by operator", after=0.2) -> threading.Thread:
    """Deliver a cancel from another thread, as the engine's cancel watcher does."""

    def deliver():
        time.sleep(after)
        run_cancel(execution_id, reason)

    thread = threading.Thread(target=deliver, daemon=True)
    thread.start()
    return thread


def test_outside_a_run_the_context_is_never_cancelled():
    context = current_run()

    assert context.execution_id is None
    assert not context.cancel_requested and not context.timed_out
    context.check()
    context.sleep(0.01)


def test_a_run_context_is_current_in_its_thread_only_for_the_run():
    with run_context(41, attempt=3, timeout=60) as context:
        assert current_run() is context
        assert (context.execution_id, context.attempt, context.timeout) == (41, 3, 60)
        assert runs_in_progress() == [41]
        seen = []
        other = threading.Thread(target=lambda: seen.append(current_run().execution_id))
        other.start()
        other.join()
        assert seen == [None], "another thread is not part of this run"
    assert current_run().execution_id is None
    assert runs_in_progress() == []


def test_sleep_returns_after_the_time_when_nobody_cancels():
    context = RunContext(1)
    began = time.monotonic()

    context.sleep(0.3)

    assert time.monotonic() - began >= 0.3
    assert not context.cancel_requested


def test_a_cancel_wakes_a_sleeping_run_at_once_with_run_cancelled():
    with run_context(42) as context:
        cancel_soon(42)
        began = time.monotonic()
        with pytest.raises(RunCancelled, match="cancelled by operator"):
            context.sleep(30)
        assert time.monotonic() - began < 10, "woken by the cancel, not by the end of the sleep"
    assert context.cancel_requested and context.cancel_reason == "cancelled by operator"


def test_check_raises_once_cancelled_and_the_first_reason_is_kept():
    context = RunContext(7)
    context.check()

    context.cancel("cancelled by the overlap policy cancel_other: a newer run is due")
    context.cancel("cancelled by operator")

    assert context.cancel_requested
    with pytest.raises(RunCancelled, match="overlap policy cancel_other"):
        context.check()


def test_a_timeout_stops_a_sleep_at_the_deadline():
    context = RunContext(8, timeout=1)
    began = time.monotonic()

    with pytest.raises(RunCancelled, match="timed out"):
        context.sleep(30)

    assert 1 <= time.monotonic() - began < 10
    assert context.timed_out and context.cancel_requested and context.cancel_reason == ""


def test_cancelling_a_run_not_in_this_process_reports_so():
    assert run_cancel(999_999, "cancelled") is False


@pytest.mark.parametrize("sleep", [functions.sleep, functions.sleep_offloaded])
def test_the_shipped_sleep_functions_honour_a_cancel_within_a_second(sleep):
    with run_context(43):
        cancel_soon(43, after=0.3)
        began = time.monotonic()
        with pytest.raises(RunCancelled):
            sleep(seconds=30)
        stopped_after = time.monotonic() - began
    assert stopped_after < 1.3, f"the cancel was delivered after 0.3 s; it stopped after {stopped_after:.2f} s"


def test_the_shipped_sleep_sleeps_its_time_outside_a_run():
    began = time.monotonic()

    assert functions.sleep(seconds=0.2) == {"slept": 0.2}
    assert time.monotonic() - began >= 0.2

"""The runner: a run claimed long ago is confirmed against its lease before it starts, and each claimed run
starts, ends cancelled or is given back at a stop exactly once."""

import sys
import threading
import time
from datetime import timedelta
from queue import SimpleQueue
from types import SimpleNamespace

import pytest
from django.db import connection
from django.utils import timezone

from scheduler.engine import runner as runner_module
from scheduler.engine.runner import Runner, _Claim
from scheduler.enums import ExecutionStatus as S
from scheduler.models import JobExecution, JobLease, ScheduledJob
from scheduler.services.claims import runs_claim
from scheduler.services.leases import leases_reap
from scheduler.services.runs import IMMEDIATE
from tests.factories import IntervalJobFactory
from tests.scheduler.engine.conftest import wait_until

ME = "runner-test"


def dispatch_in_a_worker_thread(runner, run):
    """As the engine does: each run starts and ends its thread's connections afresh."""

    def work():
        try:
            runner.dispatch(run)
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(30)


@pytest.fixture
def claimed(engine_db, settings):
    settings.SCHEDULER_LOCK_TTL = 30
    ScheduledJob.objects.update(is_enabled=False, next_run_time=None)  # only this test's job is due
    job = IntervalJobFactory()
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=timezone.now() - timedelta(seconds=1))
    runner = Runner(instance_id=ME, hostname="here", recorder=IMMEDIATE)
    [run] = runs_claim(instance_id=ME)
    runner.claimed([run])
    return runner, run


def as_if_claimed_seconds_ago(runner, run, seconds):
    claim = runner._claimed[run.execution_id]
    claim.claimed_mono -= seconds
    claim.claimed_wall -= seconds


def test_a_fresh_claim_runs_at_once(claimed):
    runner, run = claimed
    dispatch_in_a_worker_thread(runner, run)
    assert JobExecution.objects.get(pk=run.execution_id).status == S.SUCCESS
    assert runner.held() == set()


def test_a_run_held_longer_than_a_third_of_its_lease_runs_if_the_lease_is_still_its_own(claimed):
    runner, run = claimed
    as_if_claimed_seconds_ago(runner, run, 15)
    dispatch_in_a_worker_thread(runner, run)
    assert JobExecution.objects.get(pk=run.execution_id).status == S.SUCCESS


def test_a_run_whose_lease_was_reaped_while_this_process_was_frozen_is_never_started(claimed, caplog):
    runner, run = claimed
    JobLease.objects.filter(execution_id=run.execution_id).update(expires_at=run.scheduled_time)  # expired
    assert leases_reap() == 1  # another process reaps it: failed, "lease expired"
    as_if_claimed_seconds_ago(runner, run, 3600)  # the frozen process wakes
    dispatch_in_a_worker_thread(runner, run)
    execution = JobExecution.objects.get(pk=run.execution_id)
    assert execution.status == S.FAILED and execution.started_at is None
    assert "lease expired" in execution.error_message
    assert "Not starting execution" in caplog.text
    assert runner.held() == set()


class CountingRunner(Runner):
    """The runner's own bookkeeping, with runs that only say they ran (no task, no database)."""

    def __init__(self, work=lambda execution_id: None):
        super().__init__(instance_id=ME, hostname="here", recorder=IMMEDIATE)
        self.work = work  # what the run of an execution id does
        self.started, self.ran, self.ended_cancelled = [], [], []

    def _run(self, run):
        self.started.append(run.execution_id)
        self.work(run.execution_id)
        self.ran.append(run.execution_id)

    def _end_unstarted(self, run, reason):
        self.ended_cancelled.append(run.execution_id)


def claimed_runs(runner, count):
    runs = [SimpleNamespace(execution_id=pk, job_id=pk) for pk in range(1, count + 1)]
    runner.claimed(runs)
    return runs


class _LockThatYields:
    """A claim's lock that lets other threads run once it is taken and once it is let go."""

    def __init__(self, lock):
        self._lock = lock

    def __enter__(self):
        self._lock.__enter__()
        time.sleep(0)

    def __exit__(self, *exc_info):
        self._lock.__exit__(*exc_info)
        time.sleep(0)


class _ClaimThatYields(_Claim):
    """A claim at every look at whose state, and at its lock, other threads get to run: the steps
    that workers, cancels and a stop race over are then interleaved often. Without this the GIL
    seldom switches threads inside them, and a missing lock would go unnoticed."""

    __slots__ = ("_state",)

    def __init__(self, claimed_mono, claimed_wall):
        super().__init__(claimed_mono, claimed_wall)
        self.lock = _LockThatYields(self.lock)

    @property
    def state(self):
        time.sleep(0)
        return self._state

    @state.setter
    def state(self, value):
        time.sleep(0)
        self._state = value


@pytest.fixture
def claims_that_yield(monkeypatch):
    monkeypatch.setattr(runner_module, "_Claim", _ClaimThatYields)
    # A thread that lets the others run gets the GIL back within 10 microseconds, not 5 ms.
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


def test_a_cancel_that_reaches_a_waiting_run_ends_it_cancelled_and_one_too_late_is_refused():
    runner = CountingRunner()
    first, second = claimed_runs(runner, 2)
    assert runner.cancel_unstarted(first.execution_id, "stop it")
    runner.dispatch(first)
    runner.dispatch(second)
    assert not runner.cancel_unstarted(second.execution_id, "too late")  # it ran and ended
    assert runner.ended_cancelled == [first.execution_id] and runner.ran == [second.execution_id]
    assert runner.held() == set()


def test_after_close_no_claimed_run_starts_and_the_unstarted_ones_are_given_back():
    runner = CountingRunner()
    waiting, cancel_asked = claimed_runs(runner, 2)
    assert runner.cancel_unstarted(cancel_asked.execution_id, "stop it")
    unstarted, running = runner.close(timeout=0)
    assert unstarted == {waiting.execution_id, cancel_asked.execution_id} and running == set()
    runner.dispatch(waiting)
    runner.dispatch(cancel_asked)
    assert runner.ran == [] and runner.ended_cancelled == []


def test_a_run_handed_over_without_a_claim_never_starts(caplog):
    runner = CountingRunner()
    runner.dispatch(SimpleNamespace(execution_id=7, job_id=3))
    assert runner.started == [] and runner.held() == set()
    assert "execution 7 of job 3: it was handed to a worker without being claimed" in caplog.text


def test_a_stop_reports_a_run_still_running_as_running_and_not_as_given_back():
    release = threading.Event()
    runner = CountingRunner(work=lambda execution_id: release.wait(30))
    [run] = claimed_runs(runner, 1)
    worker = threading.Thread(target=runner.dispatch, args=(run,))
    worker.start()
    wait_until(lambda: runner.started, 30, "the run to start", interval=0.01)
    assert runner.close(timeout=0) == (set(), {run.execution_id})
    release.set()
    worker.join(30)


class _ClaimsThatPauseAfterAPop(dict):
    """The runner's claims, where a worker that has just taken its run out stops there until told:
    as if the interpreter switched threads at that point."""

    def __init__(self, *args):
        super().__init__(*args)
        self.popped, self.go_on = threading.Event(), threading.Event()

    def pop(self, *args):
        value = super().pop(*args)
        self.popped.set()
        self.go_on.wait(30)
        return value


def test_a_run_that_has_ended_is_not_reported_as_still_running_by_a_stop_that_comes_as_its_worker_finishes():
    """A run reported as still running has its execution abandoned (failed), which for an offloaded
    run would fail a healthy run on its Celery worker."""
    runner = CountingRunner()
    runner._claimed = _ClaimsThatPauseAfterAPop()
    [run] = claimed_runs(runner, 1)
    worker = threading.Thread(target=runner.dispatch, args=(run,))
    worker.start()
    assert runner._claimed.popped.wait(30)
    try:
        assert runner.close(timeout=5) == (set(), set())
    finally:
        runner._claimed.go_on.set()
        worker.join(30)


class _ClaimThatPausesItsWorker(_Claim):
    """A claim whose worker stops at one point until told to go on, as if the interpreter switched
    threads there: just after its first look at the state, under the claim's lock ("deciding"), or
    just after it let the lock go ("decided")."""

    def __init__(self, claimed_mono, claimed_wall, *, pause_at):
        super().__init__(claimed_mono, claimed_wall)
        self.pause_at, self.worker = pause_at, None
        self.paused, self.go_on = threading.Event(), threading.Event()
        self.other_thread_at_the_lock = threading.Event()  # the stop, come to decide this claim
        self.lock = _LockThatPauses(self, self.lock)

    def pause(self, point):
        if point == self.pause_at and threading.current_thread() is self.worker and not self.paused.is_set():
            self.paused.set()
            self.go_on.wait(30)

    @property
    def state(self):
        value = self._state
        self.pause("deciding")
        return value

    @state.setter
    def state(self, value):
        self._state = value


class _LockThatPauses:
    def __init__(self, claim, lock):
        self._claim, self._lock = claim, lock

    def __enter__(self):
        if threading.current_thread() is not self._claim.worker:
            self._claim.other_thread_at_the_lock.set()
        self._lock.__enter__()

    def __exit__(self, *exc_info):
        self._lock.__exit__(*exc_info)
        self._claim.pause("decided")


@pytest.mark.parametrize("pause_at", ["deciding", "decided"])
def test_a_stop_that_comes_as_a_worker_starts_a_run_either_counts_it_running_or_gives_it_back(pause_at):
    release = threading.Event()
    runner = CountingRunner(work=lambda execution_id: release.wait(30))
    [run] = claimed_runs(runner, 1)
    old = runner._claimed[run.execution_id]
    claim = runner._claimed[run.execution_id] = _ClaimThatPausesItsWorker(
        old.claimed_mono, old.claimed_wall, pause_at=pause_at
    )
    worker = claim.worker = threading.Thread(target=runner.dispatch, args=(run,))
    worker.start()
    assert claim.paused.wait(30)
    stopped = {}
    stopper = threading.Thread(target=lambda: stopped.update(zip(("unstarted", "running"), runner.close(timeout=0))))
    stopper.start()
    # The stop reaches the claim's lock (and, while the worker decides, waits there), or it ended
    # without taking it.
    wait_until(lambda: claim.other_thread_at_the_lock.is_set() or not stopper.is_alive(), 30, "the stop", interval=0.01)
    claim.go_on.set()
    stopper.join(30)
    wait_until(
        lambda: runner.started or not worker.is_alive(),
        30,
        "the worker to start the run or turn it away",
        interval=0.01,
    )
    release.set()
    worker.join(30)
    # The worker had found the runner open before the stop came: the run starts, and the stop, which
    # waited for the claim's lock, counts it as running (its end is not known yet), not as given back.
    assert runner.started == [run.execution_id]
    assert stopped == {"unstarted": set(), "running": {run.execution_id}}


def test_every_run_is_started_cancelled_or_given_back_exactly_once_when_workers_cancels_and_a_stop_race(
    claims_that_yield,
):
    """Eight workers dispatch a crowd while another thread cancels runs just as the workers reach
    them, and the process stops in the middle."""
    stopped = threading.Event()
    runner = CountingRunner(  # three runs go on until the stop: they are running when it comes
        work=lambda execution_id: stopped.wait(30) if execution_id in (101, 202, 303) else time.sleep(0.0005)
    )
    runs = claimed_runs(runner, 4_000)
    queue = SimpleQueue()
    for run in runs:
        queue.put(run)
    cancels_delivered, cancels_too_late = [], []

    def work():
        while (run := queue.get()) is not None:
            runner.dispatch(run)

    def cancel():
        # Runs are taken in order, so run i is about to start once about i runs have been taken.
        for index in range(0, len(runs), 7):
            while len(runner.ran) + len(runner.ended_cancelled) < index - 8 and not stopped.is_set():
                time.sleep(0)  # let the workers run: this thread only keeps pace with them
            pk = runs[index].execution_id
            (cancels_delivered if runner.cancel_unstarted(pk, "cancelled") else cancels_too_late).append(pk)

    workers = [threading.Thread(target=work) for _ in range(8)]
    canceller = threading.Thread(target=cancel)
    for thread in [*workers, canceller]:
        thread.start()
    try:
        # The stop comes in the middle of the crowd.
        wait_until(lambda: len(runner.ran) >= 1_000, 60, "1,000 runs", interval=0.001)
        started_before_the_stop = set(runner.started)
        unstarted, running = runner.close(timeout=0)
        still_running_after_it = started_before_the_stop - set(runner.ran)  # the three, and maybe more
    finally:  # even when the wait fails: no thread is left spinning behind the test
        stopped.set()
        for _ in workers:
            queue.put(None)
        for thread in [*workers, canceller]:
            thread.join(30)

    ran, ended_cancelled = set(runner.ran), set(runner.ended_cancelled)
    assert len(runner.ran) == len(ran) and len(runner.ended_cancelled) == len(ended_cancelled)  # none twice
    assert ran.isdisjoint(unstarted) and ended_cancelled.isdisjoint(unstarted) and ran.isdisjoint(ended_cancelled)
    assert ran | ended_cancelled | unstarted == {run.execution_id for run in runs}
    assert ended_cancelled <= set(cancels_delivered)  # only a delivered cancel ends a run cancelled
    assert not ran & set(cancels_delivered)  # and a run whose cancel was delivered never runs
    assert still_running_after_it <= running <= ran | ended_cancelled
    assert 0 < len(unstarted) < len(runs) - 1_000
    # The stop met runs still running, and the cancels met the workers: some in time, some too late.
    assert {101, 202, 303} <= running and len(cancels_delivered) > 10 and len(set(cancels_too_late) & ran) > 10

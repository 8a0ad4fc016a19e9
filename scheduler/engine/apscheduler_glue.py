"""Everything that reaches into APScheduler beyond its public API, in one place.

Written for APScheduler 3.11 (3.11.3 pinned). The engine uses APScheduler's loop for its wake-ups
(the job store's get_due_jobs and get_next_run_time, wakeup()) and its executor interface for
start and shutdown. Claimed runs do not travel as APScheduler jobs: the job store hands them to
RunQueueExecutor.runs_submit, so a run costs no Job, trigger, submission, removal or execution
event. The executor implements BaseExecutor's abstract _do_submit_job; the loop's thread name is
BackgroundScheduler's. tests/scheduler/engine/test_apscheduler_glue.py fails if an upgrade
changes either.
"""

import heapq
import itertools
import logging
import queue
import threading
import time

from apscheduler.executors.base import BaseExecutor

APSCHEDULER_SERIES = "3.11."
# The executor's threads, which run task functions.
WORKER_THREAD_PREFIX = "scheduler-worker-"
# The executor's thread that hands runs claimed ahead of their time to the workers at that time.
TIMER_THREAD = "scheduler-run-timer"
# The thread BackgroundScheduler.start() runs its loop in (where claims happen).
APSCHEDULER_THREAD = "APScheduler"

logger = logging.getLogger("scheduler.engine")


class RunQueueExecutor(BaseExecutor):
    """Runs claimed runs on `workers` threads taking from one queue in order; a run claimed ahead
    of its time waits in a timer until then. `dispatch(run)` runs one.

    The timer wakes at most once a `tick`, and hands over every run whose time has come: never
    before a run's time, at most a tick after it. Waking for each run at its own moment cost more
    CPU than the run (a timed sleep and a wake-up per run; README, Performance).

    APScheduler's ThreadPoolExecutor builds a Future (with its Condition) and a done-callback per
    submission, and its scheduler a Job, a trigger and three events per run, none of which a
    claimed run needs (README, Performance, says what they cost).
    """

    def __init__(self, workers: int, dispatch, tick: float = 0.0):
        super().__init__()
        self.workers = workers
        self.tick = tick
        self._dispatch = dispatch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        # (starts_at, order, run): runs claimed ahead, earliest first; the order keeps runs
        # starting at the same moment in the order they were submitted (dispatch order).
        self._timed: list[tuple] = []
        self._order = itertools.count()
        self._timer = threading.Condition()
        self._timer_stopped = False
        self._released_at = 0.0  # time.time() of the timer's last hand-over

    def start(self, scheduler, alias):
        super().start(scheduler, alias)
        self._threads = [
            threading.Thread(target=self._work, name=f"{WORKER_THREAD_PREFIX}{n}", daemon=True)
            for n in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()
        threading.Thread(target=self._release_timed, name=TIMER_THREAD, daemon=True).start()

    def runs_submit(self, runs) -> None:
        """Queue `runs`, (starts_at, run) pairs in dispatch order: a run whose starts_at (time.time()
        on this host) is still to come waits in the timer until then; the others go at once."""
        now = time.time()
        later = []
        for starts_at, run in runs:
            if starts_at is None or starts_at <= now:
                self._queue.put(run)
            else:
                later.append((starts_at, next(self._order), run))
        if not later:
            return
        with self._timer:
            earliest = self._timed[0][0] if self._timed else None
            for item in later:
                heapq.heappush(self._timed, item)
            if earliest is None or self._timed[0][0] < earliest:
                self._timer.notify()  # a new earliest: the timer must wake sooner

    def backlog(self) -> int:
        """Runs due and waiting for a worker."""
        return self._queue.qsize()

    def _do_submit_job(self, job, run_times):
        raise NotImplementedError("Claimed runs reach the executor through runs_submit, never as APScheduler jobs.")

    def _release_timed(self):
        """Hand each timed run to the workers at its time, all of a moment's runs at once."""
        with self._timer:
            while not self._timer_stopped:
                wait = self._timed[0][0] - time.time() if self._timed else None
                if wait is not None and wait <= 0:
                    now = self._released_at = time.time()
                    while self._timed and self._timed[0][0] <= now:
                        self._queue.put(heapq.heappop(self._timed)[2])
                    continue
                if wait is not None:
                    wait = max(wait, self._released_at + self.tick - time.time())
                self._timer.wait(wait)

    def _work(self):
        while (run := self._queue.get()) is not None:
            try:
                self._dispatch(run)
            except BaseException:
                # dispatch records a task's own failure; this is something failing around it (or
                # a task raising SystemExit). The thread goes on with the next run.
                logger.exception("Dispatching run %r failed", run)

    def shutdown(self, wait=True):
        # Runs still queued go first: the process's dispatch turns them away once it has stopped
        # (timed runs too: they are handed over at once, to be turned away the same way).
        with self._timer:
            self._timer_stopped = True
            while self._timed:
                self._queue.put(heapq.heappop(self._timed)[2])
            self._timer.notify()
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

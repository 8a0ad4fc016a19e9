"""Everything that reaches into APScheduler beyond its public API, in one place.

Written for APScheduler 3.11 (3.11.3 pinned). It builds Job objects without Job.__init__, and its
executor calls apscheduler.executors.base.run_job and BaseExecutor's _run_job_success /
_run_job_error as APScheduler's own executors do. tests/scheduler/engine/test_apscheduler_glue.py
fails if an upgrade changes any of these.
"""

import heapq
import itertools
import queue
import threading
import time
from datetime import UTC

from apscheduler.executors.base import BaseExecutor, run_job
from apscheduler.job import Job
from apscheduler.triggers.date import DateTrigger

APSCHEDULER_SERIES = "3.11."
# The executor's threads, which run task functions.
WORKER_THREAD_PREFIX = "scheduler-worker-"
# The executor's thread that hands runs claimed ahead of their time to the workers at that time.
TIMER_THREAD = "scheduler-run-timer"
# The thread BackgroundScheduler.start() runs its loop in (where claims happen).
APSCHEDULER_THREAD = "APScheduler"


class ClaimedRunJob(Job):
    """The single-shot APScheduler job that dispatches one claimed run.

    Job.__init__ validates user input (it inspects the function's signature on every call), which
    costs more than the rest of handing a run over; these fields are fixed and valid.
    """

    # starts_at: claimed ahead of its time, when it is to start (time.time() on this host), else None.
    __slots__ = ("starts_at",)

    def __init__(self, scheduler, jobstore_alias, dispatch, run, run_time, starts_at=None):
        self.starts_at = starts_at
        self._scheduler = scheduler
        self._jobstore_alias = jobstore_alias
        self.id = f"execution-{run.execution_id}"
        self.name = f"{run.job_name} @ {run.scheduled_time.isoformat()}"
        self.func = dispatch
        self.func_ref = None
        self.args = (run,)
        self.kwargs = {}
        self.trigger = DateTrigger(run_date=run_time, timezone=UTC)
        self.executor = "default"
        # The claim already applied the job's own misfire rule; a run queued behind others
        # in the pool must still run, never be dropped by APScheduler's check.
        self.misfire_grace_time = None
        self.coalesce = False
        self.max_instances = 1
        self.next_run_time = run_time


class RunQueueExecutor(BaseExecutor):
    """Runs claimed runs on `workers` threads taking from one queue in order; a run claimed ahead
    of its time waits in a timer until then.

    APScheduler's ThreadPoolExecutor builds a Future (with its Condition) and a done-callback per
    submission, which claimed runs do not need (README, Performance, says what it cost).
    """

    def __init__(self, workers: int):
        super().__init__()
        self.workers = workers
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        # (starts_at, order, job, run_times): runs claimed ahead, earliest first; the order keeps
        # runs starting at the same moment in the order they were submitted (dispatch order).
        self._timed: list[tuple] = []
        self._order = itertools.count()
        self._timer = threading.Condition()
        self._timer_stopped = False

    def start(self, scheduler, alias):
        super().start(scheduler, alias)
        self._threads = [
            threading.Thread(target=self._work, name=f"{WORKER_THREAD_PREFIX}{n}", daemon=True)
            for n in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()
        threading.Thread(target=self._release_timed, name=TIMER_THREAD, daemon=True).start()

    def _do_submit_job(self, job, run_times):
        starts_at = getattr(job, "starts_at", None)
        if starts_at is None or starts_at <= time.time():
            self._queue.put((job, run_times))
            return
        with self._timer:
            heapq.heappush(self._timed, (starts_at, next(self._order), job, run_times))
            if self._timed[0][2] is job:  # a new earliest: the timer must wake sooner
                self._timer.notify()

    def _release_timed(self):
        """Hand each timed run to the workers at its time, all of a moment's runs at once."""
        with self._timer:
            while not self._timer_stopped:
                wait = self._timed[0][0] - time.time() if self._timed else None
                if wait is not None and wait <= 0:
                    while self._timed and self._timed[0][0] <= time.time():
                        _, _, job, run_times = heapq.heappop(self._timed)
                        self._queue.put((job, run_times))
                    continue
                self._timer.wait(wait)

    def _work(self):
        while (item := self._queue.get()) is not None:
            job, run_times = item
            try:
                events = run_job(job, job._jobstore_alias, run_times, self._logger.name)
            except BaseException as exc:
                # run_job already turns a task's own exception into an event; this is APScheduler
                # failing around it. _run_job_error logs it with its traceback; the thread goes on.
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, events)

    def shutdown(self, wait=True):
        # Runs still queued go first: the process's dispatch turns them away once it has stopped
        # (timed runs too: they are handed over at once, to be turned away the same way).
        with self._timer:
            self._timer_stopped = True
            while self._timed:
                self._queue.put(heapq.heappop(self._timed)[2:])
            self._timer.notify()
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

"""An APScheduler executor that runs claimed runs on a fixed set of threads fed by one queue."""
import queue
import threading

from apscheduler.executors.base import BaseExecutor, run_job


class RunQueueExecutor(BaseExecutor):
    """APScheduler's ThreadPoolExecutor builds a Future (with its Condition) and a done-callback
    per submission, a tenth of the process's work at a few thousand runs per second; claimed runs
    need only a queue and `workers` threads taking from it in order."""

    def __init__(self, workers: int):
        super().__init__()
        self.workers = workers
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def start(self, scheduler, alias):
        super().start(scheduler, alias)
        self._threads = [
            threading.Thread(target=self._work, name=f"scheduler-worker-{n}", daemon=True)
            for n in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    def _do_submit_job(self, job, run_times):
        self._queue.put((job, run_times))

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
        # Runs still queued go first: the process's dispatch turns them away once it has stopped.
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

"""The engine's Recorder (services.runs): batches the lifecycle writes of a process's inline runs
into short transactions."""

import collections
import contextlib
import logging
import threading
import time

from django.db import connection

from scheduler.enums import ExecutionStatus
from scheduler.services.executions import RunEnded, RunStarted, executions_record
from scheduler.services.runs import with_reconnect

logger = logging.getLogger("scheduler.engine")


class BatchedRun:
    """What run_target_execute tracks of a run whose writes are batched: no model instance needed."""

    __slots__ = ("pk", "started_at", "status")

    def __init__(self, pk: int):
        self.pk = pk
        self.started_at = None
        self.status = ExecutionStatus.PENDING


# While runs wait for a worker (a crowd being started), writing their records waits too, up to this
# many seconds: every run's start comes first, and the writes then go in larger batches.
DEFER_WHILE_BUSY = 1.0


def deferring(busy, stop: threading.Event, longest: float = DEFER_WHILE_BUSY, step: float = 0.02) -> None:
    """Return once busy() is false, `stop` is set or `longest` seconds have passed."""
    deadline = time.monotonic() + longest
    while busy() and time.monotonic() < deadline and not stop.wait(step):
        pass


class BatchRecorder(threading.Thread):
    """Collects run starts and ends and writes them every `interval` seconds (or sooner when
    `max_batch` pile up, or when the job store is about to claim): a few statements per batch
    instead of three round trips per run.

    A run's start reaches the database within `interval`; nothing about exactly-once depends on
    it, since the claim already made the run this process's alone. The job store flushes before
    each claim, so a run of this process that ended has freed its slot before this process
    decides its job's next run.
    """

    THREAD_NAME = "scheduler-recorder"

    def __init__(self, *, interval: float = 0.1, max_batch: int = 500, guard=None):
        super().__init__(name=self.THREAD_NAME, daemon=True)
        self.guard = guard or (lambda what: contextlib.nullcontext())  # the engine watchdog's
        self.interval = interval
        self.max_batch = max_batch
        # Held from taking a batch to writing it: batches are written one at a time, in order.
        self._flushing = threading.Lock()
        # Starts and ends in the order they happened (a run's end must never reach the database
        # before its start). Worker threads append without a lock (deque.append and popleft are
        # atomic): a lock every worker takes twice per run turned into a convoy when a crowd of
        # runs started (runner.py says how).
        self._events: collections.deque = collections.deque()
        self._pending = threading.Event()
        self._full = threading.Event()
        self._stopping = threading.Event()
        self.busy = lambda: False  # set by the process: whether runs are waiting for a worker

    # --- the Recorder protocol -----------------------------------------------------------------

    def execution_of(self, target) -> "BatchedRun":
        return BatchedRun(target.execution_id)

    def run_started(self, execution, *, instance_id, hostname, celery_task_id, started_at) -> bool:
        execution.started_at = started_at
        self._add(RunStarted(execution.pk, started_at, instance_id, hostname))
        return True

    def run_ended(self, execution, ended: RunEnded) -> bool:
        self._add(ended)
        return True

    def _add(self, event) -> None:
        self._events.append(event)
        # is_set() is a plain read; set() takes the event's lock, so it is called only when needed.
        if not self._pending.is_set():
            self._pending.set()
        if len(self._events) >= self.max_batch and not self._full.is_set():
            self._full.set()

    def run(self):
        while not self._stopping.is_set():
            self._pending.wait()
            self._full.wait(self.interval)  # let a batch gather, unless it is already full
            deferring(self.busy, self._stopping)
            self.flush()
        self.flush()
        connection.close()

    def flush(self) -> None:
        """Write what has gathered, in the calling thread (the recorder's, or the job store's
        before a claim)."""
        with self._flushing:
            # Cleared before the events are taken: one added from here on sets them again.
            self._pending.clear()
            self._full.clear()
            started, ended = [], []
            for _ in range(len(self._events)):
                event = self._events.popleft()
                (started if isinstance(event, RunStarted) else ended).append(event)
            if not started and not ended:
                return
            try:
                with_reconnect(lambda: self._record(started, ended))
            except Exception:
                # Their leases expire and the reaper fails them with the reason: not lost silently.
                logger.exception("Could not record %d run starts and %d run ends", len(started), len(ended))
                connection.close()

    def _record(self, started, ended) -> None:
        with self.guard("recording runs"):
            moved = executions_record(started, ended)
        for run in ended:
            if run.execution_id not in moved:
                logger.warning(
                    "Execution %s ended %s here, but its row had moved on without this process (failed when its "
                    "lease expired while the process was frozen, say): its record stays as it is",
                    run.execution_id,
                    run.status,
                    extra={"execution_id": run.execution_id},
                )

    def stop(self) -> None:
        self._stopping.set()
        self._pending.set()
        self._full.set()
        self.join()

"""The engine's Recorder (services.runs): batches the lifecycle writes of a process's inline runs
into short transactions."""

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
        self._lock = threading.Lock()
        # Held from taking a batch to writing it: batches are written one at a time, in order (a
        # run's end must never reach the database before its start).
        self._flushing = threading.Lock()
        self._start_buffer: list[RunStarted] = []
        self._end_buffer: list[RunEnded] = []
        # Set when the buffers stop being empty: an idle recorder sleeps instead of waking 20
        # times a second to find nothing to write.
        self._pending = threading.Event()
        self._full = threading.Event()
        self._stopping = threading.Event()
        self.busy = lambda: False  # set by the process: whether runs are waiting for a worker

    # --- the Recorder protocol -----------------------------------------------------------------

    def execution_of(self, target) -> "BatchedRun":
        return BatchedRun(target.execution_id)

    def run_started(self, execution, *, instance_id, hostname, celery_task_id, started_at) -> bool:
        execution.started_at = started_at
        self._add(started=RunStarted(execution.pk, started_at, instance_id, hostname))
        return True

    def run_ended(self, execution, ended: RunEnded) -> bool:
        self._add(ended=ended)
        return True

    def _add(self, *, started=None, ended=None):
        # The buffers are looked up under the lock: flush() swaps them for new lists.
        with self._lock:
            was_empty = not self._start_buffer and not self._end_buffer
            if started is not None:
                self._start_buffer.append(started)
            if ended is not None:
                self._end_buffer.append(ended)
            full = len(self._start_buffer) + len(self._end_buffer) >= self.max_batch
        if was_empty:
            self._pending.set()
        if full:
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
            with self._lock:
                started, ended = self._start_buffer, self._end_buffer
                self._start_buffer, self._end_buffer = [], []
                # Cleared with the swap, under the lock: a run added after it sets them again.
                self._pending.clear()
                self._full.clear()
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

"""Runs what the job store claimed: inline task functions through the recorder, offloaded ones
sent to Celery; keeps account of claimed and running runs for heartbeats and for a clean stop."""

import logging
import threading
import time

from django.conf import settings
from django.db import connection, connections

from scheduler import clock
from scheduler.enums import ExecutionStatus
from scheduler.services.executions import RunEnded
from scheduler.services.leases import lease_confirm
from scheduler.services.offload import offloaded_run_send
from scheduler.services.runs import Recorder, run_target_execute, with_reconnect

logger = logging.getLogger("scheduler.engine")
_thread = threading.local()


def _connections_refresh() -> None:
    """What django.db.close_old_connections (and django-apscheduler's decorator of that name) does,
    for this thread's connections: close those that are unusable or obsolete.

    The thread's connection handles are looked up once: the per-run lookup through Django's
    thread-local registry was a noticeable part of a run that never touches the database.
    """
    handles = getattr(_thread, "connections", None)
    if handles is None:
        handles = _thread.connections = connections.all()
    for handle in handles:
        if handle.connection is not None:
            handle.close_if_unusable_or_obsolete()


class Runner:
    def __init__(self, *, instance_id: str, hostname: str, recorder: Recorder):
        self.instance_id = instance_id
        self.hostname = hostname
        self.recorder = recorder
        # execution id -> (monotonic, wall-clock) time of its claim
        self._claimed: dict[int, tuple[float, float]] = {}
        self._running: set[int] = set()
        # Claimed runs asked to stop before they started: they end cancelled and never start.
        self._cancelled: dict[int, str] = {}
        self._closed = False  # set by close(): no run starts in this process after it
        self._closing = False  # close() is waiting for claimed runs to end
        self._lock = threading.Condition()
        self.log_extra = {"instance_id": instance_id}
        # A run that waited longer than this since its claim (the process was frozen, say) may
        # have lost its lease: the database is asked before it starts.
        self.confirm_after = settings.SCHEDULER_LOCK_TTL / 3

    def claimed(self, runs) -> None:
        """The job store claimed these runs; they are this process's until they end or go back."""
        at = (time.monotonic(), time.time())
        with self._lock:
            self._claimed.update((run.execution_id, at) for run in runs)

    def held(self) -> set[int]:
        """Runs claimed and not yet ended: their leases are renewed with each heartbeat."""
        with self._lock:
            return set(self._claimed)

    def held_for(self, seconds: float) -> list[int]:
        """Runs claimed at least `seconds` ago and not yet ended (the ones a cancel may still reach)."""
        cutoff = time.monotonic() - seconds
        with self._lock:
            return [pk for pk, (at, _) in self._claimed.items() if at <= cutoff]

    def cancel_unstarted(self, execution_id: int, reason: str) -> bool:
        """Make a claimed run that has not started end cancelled instead; False if it has started
        (or is not this process's)."""
        with self._lock:
            if execution_id not in self._claimed or execution_id in self._running:
                return False
            self._cancelled[execution_id] = reason
            return True

    def dispatch(self, run) -> None:
        """Runs in an executor thread: inline functions run here; offloaded ones are sent to
        Celery (or, with no broker configured, run here through the same Celery task)."""
        with self._lock:
            if self._closed:
                return
            claimed_at = self._claimed.get(run.execution_id)
            self._running.add(run.execution_id)
            cancelled = self._cancelled.pop(run.execution_id, None)
        try:
            if cancelled is not None:
                self._end_unstarted(run, cancelled)
            elif claimed_at is None or self._still_ours(run, claimed_at):
                self._run(run)
        except Exception:
            logger.exception(
                "Run of execution %s could not be recorded; its lease will expire and fail it",
                run.execution_id,
                extra={**self.log_extra, "job_id": run.job_id, "execution_id": run.execution_id},
            )
            connection.close()
        finally:
            with self._lock:
                self._running.discard(run.execution_id)
                self._claimed.pop(run.execution_id, None)
                if self._closing:
                    self._lock.notify_all()

    def _run(self, run) -> None:
        # Every run starts (and ends) with usable database connections in this thread, as a request
        # does: one a failover or an idle-connection reaper killed is replaced, not failed on.
        _connections_refresh()
        try:
            self._execute(run)
        finally:
            _connections_refresh()

    def _execute(self, run) -> None:
        if run.offload:
            offloaded_run_send(run.execution_id)
        else:
            run_target_execute(run.target, instance_id=self.instance_id, hostname=self.hostname, recorder=self.recorder)

    def _end_unstarted(self, run, reason: str) -> None:
        ended = RunEnded(run.execution_id, ExecutionStatus.CANCELLED, None, clock.now(), error=reason)
        self.recorder.run_ended(self.recorder.execution_of(run.target), ended)

    def _still_ours(self, run, claimed_at: tuple[float, float]) -> bool:
        waited = max(time.monotonic() - claimed_at[0], time.time() - claimed_at[1])
        if waited <= self.confirm_after or with_reconnect(
            lambda: lease_confirm(run.execution_id, instance_id=self.instance_id)
        ):
            return True
        logger.warning(
            "Not starting execution %s of job %s: it waited %.0f s since this process claimed it (was "
            "the process frozen?) and is no longer this process's to run",
            run.execution_id,
            run.job_id,
            waited,
            extra={**self.log_extra, "job_id": run.job_id, "execution_id": run.execution_id},
        )
        return False

    def close(self, timeout: float) -> tuple[set[int], set[int]]:
        """Let claimed runs finish for up to `timeout` seconds, then let no more start.

        Returns (runs never started, runs still running). From here a run still queued never
        starts: it is given back for another process, and starting it here too could run it twice.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            self._closing = True
            while self._claimed and time.monotonic() < deadline:
                self._lock.wait(min(0.2, max(0.0, deadline - time.monotonic())))
            self._closed = True
            running = set(self._running)
            return set(self._claimed) - running, running

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


class _Claim:
    """One claimed run's way from its claim to its end; its lock decides, once, whether the run
    starts here, ends cancelled before starting, or is turned away by a stop."""

    __slots__ = ("claimed_mono", "claimed_wall", "state", "cancel_reason", "lock")

    # WAITING and CANCEL_ASKED runs have not started: a stop turns them away (TURNED_AWAY), to be
    # given back. A STARTED run is running, or ending cancelled without having run.
    WAITING, CANCEL_ASKED, STARTED, TURNED_AWAY = "waiting", "cancel asked", "started", "turned away"

    def __init__(self, claimed_mono: float, claimed_wall: float):
        self.claimed_mono = claimed_mono
        self.claimed_wall = claimed_wall
        self.state = self.WAITING
        self.cancel_reason = ""
        self.lock = threading.Lock()


class Runner:
    """Keeps account of the runs this process claimed and dispatches them.

    Nothing a run passes through on its way is shared by all the worker threads behind one lock:
    with a crowd of runs starting at once, such a lock turned into a convoy (a thread switched out
    while holding it made every other worker block on it, and the lock and the GIL then changed
    hands at every run, an operating-system thread switch each), and ten workers started the crowd
    two to three times slower than one (README, Performance). Each claimed run has its own lock
    instead, which only its worker and, rarely, a cancel or a stop take. The dictionaries and the
    set below are changed and copied with single operations (d[k] = v, d.pop, set.add, set(d),
    d.copy()), each atomic in CPython, the interpreter this project supports. Not list(d.items()):
    the tuples it builds can set off a garbage collection, which can let another thread run
    midway (seen as "dictionary changed size during iteration").
    """

    def __init__(self, *, instance_id: str, hostname: str, recorder: Recorder):
        self.instance_id = instance_id
        self.hostname = hostname
        self.recorder = recorder
        self._claimed: dict[int, _Claim] = {}  # claimed and not yet ended
        self._running: set[int] = set()  # started (or ending cancelled) and not yet ended
        self._closed = False  # set by close(): no run starts in this process after it
        self._closing = False  # close() is waiting for claimed runs to end
        self._close_wait = threading.Condition()
        self.log_extra = {"instance_id": instance_id}
        # A run that waited longer than this since its claim (the process was frozen, say) may
        # have lost its lease: the database is asked before it starts.
        self.confirm_after = settings.SCHEDULER_LOCK_TTL / 3

    def claimed(self, runs) -> None:
        """The job store claimed these runs; they are this process's until they end or go back."""
        mono, wall = time.monotonic(), time.time()
        self._claimed.update({run.execution_id: _Claim(mono, wall) for run in runs})

    def held(self) -> set[int]:
        """Runs claimed and not yet ended: their leases are renewed with each heartbeat."""
        return set(self._claimed)

    def held_for(self, seconds: float) -> list[int]:
        """Runs claimed at least `seconds` ago and not yet ended (the ones a cancel may still reach)."""
        cutoff = time.monotonic() - seconds
        return [pk for pk, claim in self._claimed.copy().items() if claim.claimed_mono <= cutoff]

    def cancel_unstarted(self, execution_id: int, reason: str) -> bool:
        """Make a claimed run that has not started end cancelled instead; False if it has started
        (or is not this process's)."""
        claim = self._claimed.get(execution_id)
        if claim is None:
            return False
        with claim.lock:
            if claim.state != _Claim.WAITING:
                return False
            claim.state, claim.cancel_reason = _Claim.CANCEL_ASKED, reason
            return True

    def dispatch(self, run) -> None:
        """Runs in an executor thread: inline functions run here; offloaded ones are sent to
        Celery (or, with no broker configured, run here through the same Celery task)."""
        claim = self._claimed.get(run.execution_id)
        if claim is None:
            # Only a run claimed() first has a claim whose lock a stop can decide; one without could
            # start after close() returned and be in neither of its sets.
            logger.error(
                "Not starting execution %s of job %s: it was handed to a worker without being claimed",
                run.execution_id,
                run.job_id,
                extra={**self.log_extra, "job_id": run.job_id, "execution_id": run.execution_id},
            )
            return
        with claim.lock:
            if self._closed or claim.state == _Claim.TURNED_AWAY:
                claim.state = _Claim.TURNED_AWAY
                return  # close() gives it back
            cancelled = claim.state == _Claim.CANCEL_ASKED
            claim.state = _Claim.STARTED
            self._running.add(run.execution_id)  # under the lock: close() counts it as running
        try:
            if cancelled:
                self._end_unstarted(run, claim.cancel_reason)
            elif self._still_ours(run, claim):
                self._run(run)
        except Exception:
            logger.exception(
                "Run of execution %s could not be recorded; its lease will expire and fail it",
                run.execution_id,
                extra={**self.log_extra, "job_id": run.job_id, "execution_id": run.execution_id},
            )
            connection.close()
        finally:
            # In this order: close() returns once _claimed is empty, and a run it then finds in
            # _running is reported as still running (and its execution abandoned).
            self._running.discard(run.execution_id)
            self._claimed.pop(run.execution_id, None)
            if self._closing:
                with self._close_wait:
                    self._close_wait.notify_all()

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

    def _still_ours(self, run, claim: _Claim) -> bool:
        waited = max(time.monotonic() - claim.claimed_mono, time.time() - claim.claimed_wall)
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
        self._closing = True
        with self._close_wait:
            # A run ending between the look at _claimed and the wait may not be heard: the wait is
            # short, and the loop looks again.
            while self._claimed and time.monotonic() < deadline:
                self._close_wait.wait(min(0.2, max(0.0, deadline - time.monotonic())))
        self._closed = True
        unstarted = set()
        for pk, claim in self._claimed.copy().items():
            with claim.lock:
                if claim.state != _Claim.STARTED:
                    claim.state = _Claim.TURNED_AWAY
                    unstarted.add(pk)
        # Read after every claim was decided: a run that started did so, under its claim's lock,
        # after it was counted in _running.
        return unstarted, set(self._running)

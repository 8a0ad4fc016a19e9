"""One `runscheduler` process: APScheduler, heartbeats, change wake-ups and a clean shutdown."""
import fcntl
import logging
import os
import queue
import secrets
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from logging.handlers import QueueHandler, QueueListener
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from django.db import connection, connections
from django.db.backends.signals import connection_created

from scheduler.engine.executor import RunQueueExecutor
from scheduler.engine.jobstore import DatabaseJobStore
from scheduler.engine.recorder import BatchRecorder
from scheduler.services.claims import runs_release
from scheduler.services.instances import (
    executions_abandon,
    instance_heartbeat,
    instance_register,
    instance_stop,
    leases_reap,
)
from scheduler.services.offload import offloaded_run_send
from scheduler.services.runs import run_target_execute
from scheduler.services.task_functions import task_functions_sync

logger = logging.getLogger("scheduler.engine")


def _asynchronous_commit(sender, connection, **kwargs):
    """Record run outcomes without waiting for the WAL flush: ten times the runs per second.

    Claims (services.claims) switch it back on for their own transactions, so exactly-once never
    depends on it. If PostgreSQL itself crashes, the last fraction of a second of outcomes may be
    lost; those runs then show as failed with "lease expired" once their lease runs out.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO OFF")


def _logging_off_the_hot_path() -> QueueListener:
    """Route log records through a queue to the configured handlers in one thread.

    Every run logs a line; with many pool threads, waiting on the stream handler's lock cost a
    third of the scheduler's time in the burst benchmark.
    """
    root = logging.getLogger()
    records: queue.SimpleQueue = queue.SimpleQueue()
    listener = QueueListener(records, *root.handlers, respect_handler_level=True)
    root.handlers = [QueueHandler(records)]
    listener.start()
    return listener


class SchedulerAlreadyRunning(Exception):
    """A second scheduler process on a database that supports only one (SQLite)."""


@dataclass(frozen=True)
class EngineConfig:
    workers: int
    poll_interval: float
    heartbeat_interval: float
    batch_size: int
    shutdown_timeout: float
    lock_ttl: int


class SchedulerProcess:
    def __init__(self, config: EngineConfig):
        self.config = config
        self.hostname = socket.gethostname()
        self.instance_id = f"{self.hostname}-{os.getpid()}-{secrets.token_hex(3)}"
        self.stop_requested = threading.Event()
        self._threads_stop = threading.Event()
        self._claimed: set[int] = set()
        self._running: set[int] = set()
        self._dispatch_closed = False  # set by stop(): no run starts in this process after it
        self._lock = threading.Condition()
        self._sqlite_lock_file = None
        self.scheduler = None
        self.jobstore = None
        self.recorder = None
        self.log_extra = {"instance_id": self.instance_id}

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._log_listener = _logging_off_the_hot_path()
        if connection.vendor == "sqlite":
            self._take_sqlite_lock()
        if connection.vendor == "postgresql":
            connection_created.connect(_asynchronous_commit, dispatch_uid="scheduler-async-commit")
            connection.close()  # reopened with the setting
        task_functions_sync()
        self.recorder = BatchRecorder()
        self.recorder.start()
        instance_register(instance_id=self.instance_id, hostname=self.hostname, pid=os.getpid())
        self.jobstore = DatabaseJobStore(
            instance_id=self.instance_id,
            dispatch=self._dispatch,
            on_claimed=self._on_claimed,
            batch_size=self.config.batch_size,
        )
        self.scheduler = BackgroundScheduler(
            jobstores={"default": self.jobstore},
            executors={"default": RunQueueExecutor(self.config.workers)},
            timezone="UTC",
            jobstore_retry_interval=1,
        )
        self.scheduler.start()
        self._start_thread("scheduler-heartbeat", self._heartbeat_loop)
        self._start_thread("scheduler-poll", self._poll_loop)
        if connection.vendor == "postgresql":
            from scheduler.engine.listener import ChangeListener

            ChangeListener(self.scheduler.wakeup, self._threads_stop).start()
        logger.info(
            "Scheduler %s started: database=%s workers=%d poll=%.1fs heartbeat=%.1fs batch=%d "
            "lock_ttl=%ds shutdown_timeout=%.0fs change_notifications=%s",
            self.instance_id, connection.vendor, self.config.workers, self._poll_seconds(),
            self.config.heartbeat_interval, self.config.batch_size, self.config.lock_ttl,
            self.config.shutdown_timeout, "LISTEN/NOTIFY" if connection.vendor == "postgresql" else "poll",
            extra=self.log_extra,
        )

    def run_forever(self) -> None:
        """Start, then block until SIGINT/SIGTERM, then stop cleanly."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self.stop_requested.set())
        self.start()
        while not self.stop_requested.wait(0.5):
            pass
        if self.stop():
            # Threads are still inside abandoned task functions, whose runs are already recorded
            # as failed: exit now rather than let them act on a process that is shutting down.
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)

    def stop(self) -> bool:
        """Stop claiming, let claimed runs finish within the timeout, give back or fail the rest.

        Returns True when runs were abandoned mid-flight.
        """
        logger.info("Scheduler %s stopping", self.instance_id, extra=self.log_extra)
        self.jobstore.claiming = False
        with self.scheduler._jobstores_lock:  # wait for a claim pass in progress to submit its runs
            pass
        self._threads_stop.set()
        deadline = time.monotonic() + self.config.shutdown_timeout
        with self._lock:
            while self._claimed and time.monotonic() < deadline:
                self._lock.wait(min(0.2, max(0.0, deadline - time.monotonic())))
            # From here a run still queued never starts: it is given back for another process,
            # and starting it here too could run it twice.
            self._dispatch_closed = True
            leftover, running = set(self._claimed), set(self._running)
        self.scheduler.shutdown(wait=False)
        self.recorder.stop()  # every finished run's outcome is written before anything else
        if leftover:
            released = runs_release(leftover - running, instance_id=self.instance_id)
            abandoned = executions_abandon(
                running,
                reason=f"scheduler {self.instance_id} stopped before the run finished "
                f"(shutdown timeout {self.config.shutdown_timeout:.0f}s)",
            )
            logger.warning(
                "Scheduler %s stopped with %d runs unfinished: %d given back, %d failed",
                self.instance_id, len(leftover), released, abandoned, extra=self.log_extra,
            )
        instance_stop(self.instance_id)
        connections.close_all()
        logger.info("Scheduler %s stopped", self.instance_id, extra=self.log_extra)
        self._log_listener.stop()
        return bool(running & leftover)

    # --- runs ------------------------------------------------------------------------------------

    def _on_claimed(self, runs) -> None:
        with self._lock:
            self._claimed.update(run.execution_id for run in runs)

    def _dispatch(self, run) -> None:
        """Runs in the thread pool: inline functions run here; offloaded ones are sent to Celery
        (or, with no broker configured, run here through the same Celery task)."""
        with self._lock:
            if self._dispatch_closed:
                return
            self._running.add(run.execution_id)
        try:
            if run.offload:
                offloaded_run_send(run.execution_id)
            else:
                run_target_execute(run.target, instance_id=self.instance_id, hostname=self.hostname,
                                   recorder=self.recorder)
        except Exception:
            logger.exception(
                "Run of execution %s could not be recorded; its lease will expire and fail it",
                run.execution_id, extra={**self.log_extra, "job_id": run.job_id, "execution_id": run.execution_id},
            )
            connection.close()
        finally:
            with self._lock:
                self._running.discard(run.execution_id)
                self._claimed.discard(run.execution_id)
                self._lock.notify_all()

    # --- background threads ------------------------------------------------------------------------

    def _start_thread(self, name, target):
        threading.Thread(target=target, name=name, daemon=True).start()

    def _poll_seconds(self) -> float:
        # Without LISTEN/NOTIFY (SQLite) the poll is the only way to hear about manual runs soon.
        if connection.vendor == "postgresql":
            return self.config.poll_interval
        return min(self.config.poll_interval, 0.5)

    def _poll_loop(self):
        interval = self._poll_seconds()
        while not self._threads_stop.wait(interval):
            self.scheduler.wakeup()

    def _heartbeat_loop(self):
        while not self._threads_stop.wait(self.config.heartbeat_interval):
            try:
                with self._lock:
                    running = set(self._claimed)
                instance_heartbeat(self.instance_id, running_execution_ids=running)
                leases_reap()
            except Exception as exc:
                logger.warning("Heartbeat failed (%s); retrying", exc, extra=self.log_extra)
                connection.close()
        connection.close()

    def _take_sqlite_lock(self):
        path = Path(str(connection.settings_dict["NAME"]) + ".scheduler.lock")
        handle = open(path, "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise SchedulerAlreadyRunning(
                f"Another scheduler process is already running on this SQLite database "
                f"({connection.settings_dict['NAME']}). SQLite supports a single scheduler process; "
                f"use PostgreSQL (DATABASE_URL=postgres://...) to run several."
            ) from None
        self._sqlite_lock_file = handle

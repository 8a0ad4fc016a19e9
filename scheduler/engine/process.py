"""One `runscheduler` process: APScheduler over the job store, the runner and the recorder,
heartbeats, change wake-ups and a clean shutdown."""

import logging
import os
import secrets
import signal
import socket
import sys
import threading
from dataclasses import dataclass

from apscheduler.schedulers.background import BackgroundScheduler
from django.conf import settings
from django.db import connection, connections

from scheduler.backends import SchedulerAlreadyRunning, backend
from scheduler.engine.apscheduler_glue import APSCHEDULER_THREAD, RunQueueExecutor
from scheduler.engine.cancels import CancelWatcher
from scheduler.engine.jobstore import CLAIM_LANE_PREFIX, DatabaseJobStore
from scheduler.engine.log_queue import logging_off_the_hot_path
from scheduler.engine.notifier import Notifier
from scheduler.engine.recorder import BatchRecorder
from scheduler.engine.runner import Runner
from scheduler.engine.watchdog import Watchdog
from scheduler.models import clock_offset_skewed
from scheduler.services.changes import schedule_changed
from scheduler.services.claims import runs_release
from scheduler.services.declarations import jobs_sync
from scheduler.services.instances import (
    clock_offset_measure,
    clock_skew_report,
    executions_abandon,
    instance_heartbeat,
    instance_register,
    instance_stop,
)
from scheduler.services.leases import leases_reap
from scheduler.services.runs import with_reconnect
from scheduler.services.task_functions import task_functions_sync

logger = logging.getLogger("scheduler.engine")


# The threads whose sessions are the engine's own: this process's main thread, APScheduler's loop
# (claims), the extra claim lanes, the recorder, the heartbeat, the cancel watcher and the notifier.
HEARTBEAT_THREAD = "scheduler-heartbeat"
ENGINE_THREADS = (
    "MainThread",
    APSCHEDULER_THREAD,
    BatchRecorder.THREAD_NAME,
    HEARTBEAT_THREAD,
    CancelWatcher.THREAD_NAME,
    Notifier.THREAD_NAME,
)
# The receiver of in-process change announcements (a retry scheduled, a slot freed) by this process.
CHANGES_HEARD = "scheduler-engine-changes"
ENGINE_THREAD_PREFIXES = (CLAIM_LANE_PREFIX,)


def _is_engine_thread() -> bool:
    """Task functions' threads (the workers, and any thread a task starts) keep the database's
    session defaults: the engine's timeouts and asynchronous commit are for its own statements."""
    name = threading.current_thread().name
    return name in ENGINE_THREADS or name.startswith(ENGINE_THREAD_PREFIXES)


__all__ = ["EngineConfig", "SchedulerAlreadyRunning", "SchedulerProcess"]


@dataclass(frozen=True)
class EngineConfig:
    workers: int
    poll_interval: float
    heartbeat_interval: float
    batch_size: int
    shutdown_timeout: float


class SchedulerProcess:
    def __init__(self, config: EngineConfig):
        self.config = config
        self.hostname = socket.gethostname()
        self.instance_id = f"{self.hostname}-{os.getpid()}-{secrets.token_hex(3)}"
        self.stop_requested = threading.Event()
        self._threads_stop = threading.Event()
        self.scheduler = None
        self.jobstore = None
        self.recorder = None
        self.runner = None
        self.watchdog = None
        self.cancel_watcher = None
        self.notifier = None
        self.clock_offset = None
        self.log_extra = {"instance_id": self.instance_id}

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._log_writer = logging_off_the_hot_path()
        # A long-running process keeps its connections, as a worker should (each thread has its own);
        # close_old_connections around every run and Django's health checks replace dead ones.
        connection.settings_dict["CONN_MAX_AGE"] = None
        db = backend()
        db.single_process_guard()
        db.engine_sessions(is_engine_thread=_is_engine_thread)
        task_functions_sync()
        jobs_sync().log(logger, extra=self.log_extra)
        self.clock_offset = clock_offset_measure()
        clock_skew_report(self.instance_id, self.clock_offset)
        self.watchdog = Watchdog(settings.SCHEDULER_DB_OPERATION_TIMEOUT, self._threads_stop)
        self.watchdog.start()
        self.recorder = BatchRecorder(guard=self.watchdog.guard)
        self.recorder.start()
        self.runner = Runner(instance_id=self.instance_id, hostname=self.hostname, recorder=self.recorder)
        instance_register(
            instance_id=self.instance_id, hostname=self.hostname, pid=os.getpid(), clock_offset=self.clock_offset
        )
        executor = RunQueueExecutor(self.config.workers, self.runner.dispatch, tick=settings.SCHEDULER_START_TICK)
        # While runs wait for a worker, their records and log lines wait (up to a second): starts first.
        self.recorder.busy = self._log_writer.busy = executor.backlog
        self.jobstore = DatabaseJobStore(
            instance_id=self.instance_id,
            submit=executor.runs_submit,
            on_claimed=self.runner.claimed,
            batch_size=self.config.batch_size,
            guard=self.watchdog.guard,
            before_claim=self.recorder.flush,
        )
        self.scheduler = BackgroundScheduler(
            jobstores={"default": self.jobstore},
            executors={"default": executor},
            timezone="UTC",
            jobstore_retry_interval=1,
        )
        self.scheduler.start()
        self.cancel_watcher = CancelWatcher(self.runner, self._threads_stop, guard=self.watchdog.guard)
        self.cancel_watcher.start()
        self._start_thread(HEARTBEAT_THREAD, self._heartbeat_loop)
        self._start_thread("scheduler-poll", self._poll_loop)
        self.notifier = Notifier(
            instance_id=self.instance_id,
            interval=settings.SCHEDULER_NOTIFY_INTERVAL,
            stop_event=self._threads_stop,
            guard=self.watchdog.guard,
        )
        self.notifier.start()
        schedule_changed.connect(self._changes_heard, weak=False, dispatch_uid=CHANGES_HEARD)
        listener = db.change_listener(self._wakeup, self._threads_stop)
        if listener is not None:
            listener.start()
        logger.info(
            "Scheduler %s started: database=%s workers=%d poll=%.1fs heartbeat=%.1fs batch=%d "
            "lock_ttl=%ds shutdown_timeout=%.0fs change_notifications=%s clock_offset=%s",
            self.instance_id,
            db.vendor,
            self.config.workers,
            db.poll_interval(self.config.poll_interval),
            self.config.heartbeat_interval,
            self.config.batch_size,
            settings.SCHEDULER_LOCK_TTL,
            self.config.shutdown_timeout,
            db.change_notifications,
            "-" if self.clock_offset is None else f"{self.clock_offset:+.3f}s",
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
        schedule_changed.disconnect(dispatch_uid=CHANGES_HEARD)
        self.jobstore.stop_claiming()
        self._threads_stop.set()
        unstarted, running = self.runner.close(self.config.shutdown_timeout)
        self.scheduler.shutdown(wait=False)
        self.recorder.stop()  # every finished run's outcome is written before anything else
        # A delivery being sent is recorded before the process goes (sends are bounded by a timeout).
        self.notifier.join(settings.SCHEDULER_NOTIFY_TIMEOUT + 5)
        # This thread's connection dates from start-up; a failover since may have killed it.
        connection.close()
        if unstarted or running:
            released = with_reconnect(lambda: runs_release(unstarted, instance_id=self.instance_id))
            abandoned = with_reconnect(
                lambda: executions_abandon(
                    running,
                    reason=f"scheduler {self.instance_id} stopped before the run finished "
                    f"(shutdown timeout {self.config.shutdown_timeout:.0f}s)",
                )
            )
            logger.warning(
                "Scheduler %s stopped with %d runs unfinished: %d given back, %d failed",
                self.instance_id,
                len(unstarted) + len(running),
                released,
                abandoned,
                extra=self.log_extra,
            )
        with_reconnect(lambda: instance_stop(self.instance_id))
        connections.close_all()
        logger.info("Scheduler %s stopped", self.instance_id, extra=self.log_extra)
        self._log_writer.stop()
        return bool(running)

    # --- background threads ------------------------------------------------------------------------

    def _wakeup(self) -> None:
        """Something changed: look for due runs and for cancel requests now."""
        self.scheduler.wakeup()
        self.cancel_watcher.wake()

    def _changes_heard(self, sender=None, **kwargs) -> None:
        self._wakeup()

    def _start_thread(self, name, target):
        threading.Thread(target=target, name=name, daemon=True).start()

    def _poll_loop(self):
        interval = backend().poll_interval(self.config.poll_interval)
        while not self._threads_stop.wait(interval):
            self.scheduler.wakeup()

    def _heartbeat_loop(self):
        while not self._threads_stop.wait(self.config.heartbeat_interval):
            try:
                with self.watchdog.guard("heartbeat"):
                    offset = clock_offset_measure()
                    if clock_offset_skewed(offset) and not clock_offset_skewed(self.clock_offset):
                        clock_skew_report(self.instance_id, offset)  # once each time it starts
                    self.clock_offset = offset
                    instance_heartbeat(self.instance_id, running_execution_ids=self.runner.held(), clock_offset=offset)
                    leases_reap()
            except Exception as exc:
                logger.warning("Heartbeat failed (%s); retrying", exc, extra=self.log_extra)
                connection.close()
        connection.close()

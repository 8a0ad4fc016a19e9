"""Running one execution: resolve its registered task function, call it, record the outcome."""

import logging
import socket
import time
import traceback as traceback_module
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from django.db import DatabaseError, InterfaceError, OperationalError, connection

from scheduler import clock
from scheduler.enums import ExecutionStatus
from scheduler.models import JobExecution
from scheduler.registry import RunCancelled, run_context
from scheduler.services.executions import (
    InvalidTransition,
    RunEnded,
    execution_end,
    execution_finish,
    execution_start,
)
from scheduler.services.run_logs import run_logs_start, run_logs_stop
from scheduler.services.task_functions import TaskFunctionUnavailable, task_function_resolve

logger = logging.getLogger("scheduler.runs")
HOSTNAME = socket.gethostname()
# How long a run keeps trying to record itself while the database is unreachable.
RECONNECT_DEADLINE = 120.0


@dataclass(frozen=True)
class RunTarget:
    """What running one execution needs to know."""

    execution_id: int
    job_id: int
    job_name: str
    scheduled_time: datetime
    task_function_name: str
    task_function_active: bool
    timeout: int | None  # the job's, else its task function's
    args: list
    kwargs: dict
    attempt: int = 1

    @classmethod
    def of_job(cls, execution_id: int, scheduled_time: datetime, job) -> "RunTarget":
        """From a job (a model with its task function loaded, or a claimed row)."""
        return cls(
            execution_id=execution_id,
            job_id=job.pk,
            job_name=job.name,
            scheduled_time=scheduled_time,
            task_function_name=job.task_function.name,
            task_function_active=job.task_function.is_active,
            timeout=job.effective_timeout(),
            args=job.args,
            kwargs=job.kwargs,
        )

    @classmethod
    def of_execution(cls, execution: JobExecution, job) -> "RunTarget":
        """From an execution row, which carries its own arguments (a trigger with other arguments,
        a retry) unless it predates recording them."""
        return cls(
            execution_id=execution.pk,
            job_id=job.pk,
            job_name=job.name,
            scheduled_time=execution.scheduled_time,
            task_function_name=job.task_function.name,
            task_function_active=job.task_function.is_active,
            timeout=job.effective_timeout(),
            args=job.args if execution.args is None else execution.args,
            kwargs=job.kwargs if execution.kwargs is None else execution.kwargs,
            attempt=execution.attempt,
        )


def execution_run(
    execution_id: int,
    *,
    instance_id: str = "",
    hostname: str = HOSTNAME,
    celery_task_id: str = "",
    timeout_errors: tuple[type[BaseException], ...] = (),
) -> JobExecution | None:
    """Run a pending execution to its end: pending -> running -> success | failed.

    Only a function registered in code (scheduler.registry) is ever called. Returns None when the
    execution is no longer pending (another process or the lease reaper dealt with it).
    """
    execution = with_reconnect(lambda: JobExecution.objects.select_related("job__task_function").get(pk=execution_id))
    target = RunTarget.of_execution(execution, execution.job)
    if execution.cancel_requested_at is not None and execution.status == ExecutionStatus.PENDING:
        # Cancelled before it started (a revoke that did not reach this worker): it never starts.
        ended = RunEnded(execution.pk, ExecutionStatus.CANCELLED, None, clock.now(), error=execution.cancel_reason)
        return execution if IMMEDIATE.run_ended(execution, ended) else None
    return run_target_execute(
        target,
        instance_id=instance_id,
        hostname=hostname,
        celery_task_id=celery_task_id,
        timeout_errors=timeout_errors,
        execution=execution,
    )


class Recorder(Protocol):
    """Where run_target_execute records a run's start and end. Both return False when the run
    moved on without this process (another process or the lease reaper dealt with it)."""

    def execution_of(self, target: RunTarget):
        """What the lifecycle calls act on: a JobExecution, or the recorder's own light record."""

    def run_started(
        self, execution, *, instance_id: str, hostname: str, celery_task_id: str, started_at: datetime
    ) -> bool: ...

    def run_ended(self, execution, ended: RunEnded) -> bool: ...


class ImmediateRecorder:
    """Writes each transition as it happens (Celery workers and single runs); the engine's
    BatchRecorder (engine/recorder.py) batches the writes of many inline runs instead."""

    def execution_of(self, target: RunTarget) -> JobExecution:
        """The execution the lifecycle services act on, built from the target without a query."""
        return JobExecution(
            pk=target.execution_id,
            job_id=target.job_id,
            scheduled_time=target.scheduled_time,
            status=ExecutionStatus.PENDING,
        )

    def run_started(self, execution, *, instance_id, hostname, celery_task_id, started_at) -> bool:
        return _record(
            execution_start,
            execution,
            ExecutionStatus.RUNNING,
            instance_id=instance_id,
            hostname=hostname,
            celery_task_id=celery_task_id,
        )

    def run_ended(self, execution, ended: RunEnded) -> bool:
        if ended.status == ExecutionStatus.SUCCESS:
            return _record(execution_finish, execution, ExecutionStatus.SUCCESS, result=ended.result, logs=ended.logs)
        return _record(
            execution_end,
            execution,
            ended.status,
            status=ended.status,
            result=ended.result,
            error=ended.error,
            traceback=ended.traceback,
            # A run that never started may only leave pending: a running one belongs to whoever started it.
            sources={ExecutionStatus.PENDING} if ended.started_at is None else {ExecutionStatus.RUNNING},
            logs=ended.logs,
        )


IMMEDIATE = ImmediateRecorder()


def run_target_execute(
    target: RunTarget,
    *,
    instance_id: str = "",
    hostname: str = HOSTNAME,
    celery_task_id: str = "",
    timeout_errors: tuple[type[BaseException], ...] = (),
    execution: JobExecution | None = None,
    recorder: Recorder = IMMEDIATE,
) -> JobExecution | None:
    """execution_run for a caller that already holds what the run needs."""
    if execution is None:
        execution = recorder.execution_of(target)
    log_extra = {"job_id": target.job_id, "execution_id": target.execution_id, "instance_id": instance_id or "-"}
    try:
        spec = task_function_resolve(target.task_function_name, active=target.task_function_active)
    except TaskFunctionUnavailable as exc:
        # Only a run still pending is failed here: a running one belongs to whoever started it.
        ended = RunEnded(target.execution_id, ExecutionStatus.FAILED, None, clock.now(), error=str(exc))
        if not recorder.run_ended(execution, ended):
            return None
        _log_outcome(target, ended, log_extra)
        return execution
    started_at = clock.now()
    if not recorder.run_started(
        execution, instance_id=instance_id, hostname=hostname, celery_task_id=celery_task_id, started_at=started_at
    ):
        return None
    started_at = execution.started_at or started_at
    began = time.monotonic()

    def finished_at():
        # From the start by a monotonic clock: the offset from the database's clock may be
        # measured again while the function runs, and a duration must never come out negative.
        return started_at + timedelta(seconds=time.monotonic() - began)

    result, error, trace, hard_timeout, logs = None, "", "", False, None
    run_logs_start()  # what the function logs is kept with its run (services.run_logs)
    with run_context(target.execution_id, attempt=target.attempt, timeout=target.timeout) as context:
        try:
            try:
                result = spec.func(*target.args, **target.kwargs)
            finally:
                logs = run_logs_stop()
        except RunCancelled:
            trace = traceback_module.format_exc()
        except timeout_errors:
            hard_timeout, trace = True, traceback_module.format_exc()
        except Exception as exc:  # the task function's own failure is the run's outcome
            error, trace = f"{type(exc).__name__}: {exc}", traceback_module.format_exc()
    ended_at = finished_at()
    # A stop that was asked for decides the outcome, however the function ended.
    if context.cancel_reason:
        status, error = ExecutionStatus.CANCELLED, context.cancel_reason + (f" (then {error})" if error else "")
    elif hard_timeout or context.timed_out:
        status = ExecutionStatus.TIMED_OUT
        error = f"timed out: ran {(ended_at - started_at).total_seconds():.1f}s, past the timeout of {target.timeout}s"
    elif error or trace:
        status = ExecutionStatus.FAILED
        error = error or "RunCancelled: the task function stopped itself"
    else:
        status = ExecutionStatus.SUCCESS
    ended = RunEnded(
        target.execution_id, status, started_at, ended_at, result=result, error=error, traceback=trace, logs=logs
    )
    recorder.run_ended(execution, ended)
    execution.status = ended.status
    _log_outcome(target, ended, log_extra)
    return execution


def _record(service, execution, target: str, **kwargs) -> bool:
    """Apply a lifecycle service, surviving a dropped connection; False if the run moved on without us."""
    attempts = 0

    def attempt():
        nonlocal attempts
        attempts += 1
        try:
            service(execution, **kwargs)
            return True
        except InvalidTransition as exc:
            current = JobExecution.objects.filter(pk=execution.pk).values_list("status", flat=True).first()
            if attempts > 1 and current == target:
                execution.status = target  # our first attempt committed before the connection broke
                return True
            # Otherwise another process (or the lease reaper) dealt with the run; its record stands.
            logger.warning("Execution %s: %s", execution.pk, exc)
            return False

    return with_reconnect(attempt)


def with_reconnect(operation, *, deadline_seconds: float = RECONNECT_DEADLINE):
    """Run a database operation, reconnecting with back-off while the server is unreachable.

    django-apscheduler's retry_on_db_operational_error retries once, at once; a restarting
    PostgreSQL needs a few seconds.
    """
    deadline = time.monotonic() + deadline_seconds
    delay = 0.2
    while True:
        try:
            return operation()
        except DatabaseError as exc:
            # A session the server ended (a failover, an idle-in-transaction timeout) can surface as
            # another DatabaseError; what they share is a connection that no longer works.
            if not isinstance(exc, (OperationalError, InterfaceError)) and connection_usable():
                raise
            connection.close()
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("Database unavailable (%s); retrying in %.1fs", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def connection_usable() -> bool:
    """Whether this thread's database connection still works (asked only after an error)."""
    return connection.connection is not None and connection.is_usable()


def _log_outcome(target: RunTarget, ended: RunEnded, extra: dict) -> None:
    """The one INFO line per run: job, scheduled time, lag, outcome."""
    started = ended.started_at or ended.finished_at
    lag_ms = (started - target.scheduled_time).total_seconds() * 1000
    duration = (
        "-" if ended.started_at is None else f"{(ended.finished_at - ended.started_at).total_seconds() * 1000:.0f}"
    )
    level = logging.INFO if ended.status == ExecutionStatus.SUCCESS else logging.WARNING
    # Written out here rather than left to logging's %-formatting: a message without arguments is
    # queued as it is by the engine's log handler (engine/log_queue.py), with nothing to check.
    error = f" error={ended.error!r}" if ended.error else ""
    logger.log(
        level,
        f"run job={target.job_id} ({target.job_name}) scheduled={target.scheduled_time.isoformat()} "
        f"lag={lag_ms:.0f}ms outcome={str(ended.status)} duration={duration}ms{error}",
        extra=extra,
    )

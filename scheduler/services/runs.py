"""Running one execution: resolve its registered task function, call it, record the outcome."""
import logging
import socket
import time
import traceback as traceback_module

from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from scheduler.models import ExecutionStatus, JobExecution
from scheduler.services.executions import (
    InvalidTransition,
    execution_fail,
    execution_finish,
    execution_start,
)
from scheduler.services.task_functions import TaskFunctionUnavailable, task_function_resolve

logger = logging.getLogger("scheduler.runs")
HOSTNAME = socket.gethostname()
# How long a run keeps trying to record itself while the database is unreachable.
RECONNECT_DEADLINE = 120.0


def execution_run(
    execution_id: int,
    *,
    instance_id: str = "",
    hostname: str = HOSTNAME,
    celery_task_id: str = "",
    timeout_errors: tuple[type[BaseException], ...] = (),
) -> JobExecution | None:
    """Run a pending execution to its end: pending -> running -> success | failed.

    Only a function registered in code (tasks.registry) is ever called. Returns None when the
    execution is no longer pending (another process or the lease reaper dealt with it).
    """
    execution = _with_reconnect(
        lambda: JobExecution.objects.select_related("job__task_function").get(pk=execution_id)
    )
    job = execution.job
    log_extra = {"job_id": job.pk, "execution_id": execution.pk, "instance_id": instance_id or "-"}
    try:
        spec = task_function_resolve(job.task_function)
    except TaskFunctionUnavailable as exc:
        # Only a run still pending is failed here: execution_fail also accepts a running one,
        # which another process (or an earlier delivery) is executing and still owns.
        with transaction.atomic():
            if JobExecution.objects.select_for_update().filter(
                pk=execution.pk, status=ExecutionStatus.PENDING
            ).exists():
                execution_fail(execution, error=str(exc))
            else:
                return None
        _log_outcome(execution, log_extra)
        return execution
    if not _record(execution_start, execution, ExecutionStatus.RUNNING, instance_id=instance_id,
                   hostname=hostname, celery_task_id=celery_task_id):
        return None
    try:
        result = spec.func(*job.args, **job.kwargs)
    except timeout_errors:
        _record(execution_fail, execution, ExecutionStatus.FAILED,
                error=f"timed out: exceeded the task function's timeout of {job.task_function.timeout}s",
                traceback=traceback_module.format_exc())
    except Exception as exc:  # the task function's own failure is the run's outcome
        _record(execution_fail, execution, ExecutionStatus.FAILED, error=f"{type(exc).__name__}: {exc}",
                traceback=traceback_module.format_exc())
    else:
        _record(execution_finish, execution, ExecutionStatus.SUCCESS, result=result)
    _log_outcome(execution, log_extra)
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

    return _with_reconnect(attempt)


def _with_reconnect(operation, *, deadline_seconds: float = RECONNECT_DEADLINE):
    """Run a database operation, reconnecting with back-off while the server is unreachable.

    django-apscheduler's retry_on_db_operational_error retries once, at once; a restarting
    PostgreSQL needs a few seconds.
    """
    deadline = time.monotonic() + deadline_seconds
    delay = 0.2
    while True:
        try:
            return operation()
        except (OperationalError, InterfaceError) as exc:
            connection.close()
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("Database unavailable (%s); retrying in %.1fs", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _log_outcome(execution: JobExecution, extra: dict) -> None:
    started = execution.started_at or timezone.now()
    lag_ms = (started - execution.scheduled_time).total_seconds() * 1000
    level = logging.INFO if execution.status == ExecutionStatus.SUCCESS else logging.WARNING
    logger.log(
        level,
        "run job=%s (%s) scheduled=%s lag=%.0fms outcome=%s duration=%sms%s",
        execution.job_id, execution.job.name, execution.scheduled_time.isoformat(), lag_ms,
        execution.status, execution.duration_ms,
        f" error={execution.error_message!r}" if execution.error_message else "",
        extra=extra,
    )

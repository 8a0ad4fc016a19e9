"""Running one execution: resolve its registered task function, call it, record the outcome."""
import logging
import socket
import traceback as traceback_module

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


def execution_run(
    execution_id: int, *, instance_id: str = "", hostname: str = HOSTNAME, celery_task_id: str = ""
) -> JobExecution | None:
    """Run a pending execution to its end: pending -> running -> success | failed.

    Only a function registered in code (tasks.registry) is ever called. Returns None when the
    execution is no longer pending (another process or the lease reaper dealt with it).
    """
    execution = JobExecution.objects.select_related("job__task_function").get(pk=execution_id)
    job = execution.job
    log_extra = {"job_id": job.pk, "execution_id": execution.pk, "instance_id": instance_id or "-"}
    try:
        spec = task_function_resolve(job.task_function)
    except TaskFunctionUnavailable as exc:
        try:
            execution_fail(execution, error=str(exc))
        except InvalidTransition:
            return None
        _log_outcome(execution, log_extra)
        return execution
    try:
        execution_start(execution, instance_id=instance_id, hostname=hostname, celery_task_id=celery_task_id)
    except InvalidTransition as exc:
        logger.warning("Not running execution %s: %s", execution_id, exc, extra=log_extra)
        return None
    try:
        result = spec.func(*job.args, **job.kwargs)
    except Exception as exc:  # the task function's own failure is the run's outcome
        _finish_safely(execution_fail, execution, error=f"{type(exc).__name__}: {exc}",
                       traceback=traceback_module.format_exc())
    else:
        _finish_safely(execution_finish, execution, result=result)
    _log_outcome(execution, log_extra)
    return execution


def _finish_safely(service, execution, **kwargs):
    try:
        service(execution, **kwargs)
    except InvalidTransition as exc:
        # The lease expired and the reaper failed this run meanwhile; its record stands.
        logger.warning("Outcome of execution %s not recorded: %s", execution.pk, exc)


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

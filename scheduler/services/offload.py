"""Sending offloaded runs to Celery, or running them in-process when no broker is configured."""

import logging
import threading
import uuid

from celery import current_app
from django.conf import settings

from scheduler.enums import ExecutionStatus
from scheduler.models import JobExecution
from scheduler.services.executions import InvalidTransition, execution_fail, execution_lost

logger = logging.getLogger("scheduler.offload")
# The Celery task that runs an offloaded execution on a worker (scheduler/tasks.py). Sent by name,
# so this module never imports the task module, which imports the services.
RUN_OFFLOADED = "scheduler.run_offloaded"

# Extra seconds between the soft time limit (raised inside the task function) and the hard one
# (the worker kills the process), for the function to clean up.
HARD_LIMIT_MARGIN = 30
# Redis delivers priority 0 first; job priority is "higher runs first".
CELERY_PRIORITY_LEVELS = 10
# Kombu's producer pool is not safe to set up from several threads at once (a message was seen
# lost that way); publishing one message is quick, so one sender at a time costs little.
_send_lock = threading.Lock()
SEND_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0}


def celery_priority(job_priority: int) -> int:
    """Map a job's priority (higher first) to Redis's 0 (first) .. 9 (last)."""
    return CELERY_PRIORITY_LEVELS - 1 - min(max(job_priority, 0), CELERY_PRIORITY_LEVELS - 1)


def offloaded_run_send(execution_id: int) -> str:
    """Hand an offloaded run to a Celery worker (or run it here, with no broker); returns the task id.

    Called after the claim committed. A broker that cannot be reached fails the execution with
    the reason, after a short bounded retry, and never blocks the scheduler.
    """
    execution = JobExecution.objects.select_related("job__task_function").get(pk=execution_id)
    task_function = execution.job.task_function
    task_id = str(uuid.uuid4())
    JobExecution.objects.filter(pk=execution_id).update(celery_task_id=task_id)
    limits = {}
    if timeout := execution.job.effective_timeout():
        # The soft limit raises inside the function (the run ends timed out); the hard one kills it.
        limits = {"soft_time_limit": timeout, "time_limit": timeout + HARD_LIMIT_MARGIN}
    if not settings.CELERY_BROKER_URL:
        # Zero-setup mode: the same task, run by this thread.
        current_app.tasks[RUN_OFFLOADED].apply(args=[execution_id], task_id=task_id, **limits)
        return task_id
    try:
        with _send_lock:
            current_app.send_task(
                RUN_OFFLOADED,
                args=[execution_id],
                task_id=task_id,
                queue=task_function.queue,
                priority=celery_priority(execution.job.priority),
                retry=True,
                retry_policy=SEND_RETRY_POLICY,
                **limits,
            )
        logger.debug(
            "Sent execution %s to queue %r",
            execution_id,
            task_function.queue,
            extra={"execution_id": execution_id, "job_id": execution.job_id},
        )
    except Exception as exc:  # kombu raises assorted connection errors
        logger.error(
            "Could not send execution %s to Celery: %s",
            execution_id,
            exc,
            extra={"execution_id": execution_id, "job_id": execution.job_id},
        )
        try:
            execution_fail(execution, error=f"could not send the run to the Celery broker: {type(exc).__name__}: {exc}")
        except InvalidTransition:
            pass
    return task_id


def offloaded_run_lost(execution_id: int, *, reason: str, timed_out: bool = False) -> None:
    """End an offloaded run whose worker process was killed, timed out hard or was revoked: failed
    (and retried, if the job says so), or cancelled if someone had asked for that."""
    execution = JobExecution.objects.filter(pk=execution_id).first()
    if execution is not None:
        execution_lost(
            execution, reason=reason, status=ExecutionStatus.TIMED_OUT if timed_out else ExecutionStatus.FAILED
        )


def offloaded_run_revoke(task_id: str, *, terminate: bool) -> None:
    """Revoke an offloaded run's Celery task: it never starts on a worker, and with `terminate` a
    worker running it kills the process running it (the worker then records it cancelled)."""
    if not settings.CELERY_BROKER_URL:
        return  # run in-process by a scheduler thread: it is stopped through its run context
    try:
        current_app.control.revoke(task_id, terminate=terminate, signal="SIGTERM")
    except Exception as exc:  # the run still ends when its worker sees the cancel request
        logger.error("Could not revoke Celery task %s: %s", task_id, exc)

"""Built-in task functions: useful for trying the scheduler, for tests, and for housekeeping."""

import logging

from scheduler.registry import current_run, task_function
from scheduler.services.retention import executions_cleanup

# What a task function logs while it runs is kept with its execution (README: "The logs of each run").
logger = logging.getLogger("tasks.functions")


@task_function(description="Does nothing; for trying the scheduler and measuring its overhead.")
def noop(*args, **kwargs):
    return None


@task_function(description="Logs and returns its arguments, to check what a job passes.")
def echo(*args, **kwargs):
    logger.info("echo: args=%r kwargs=%r", list(args), kwargs)
    return {"args": list(args), "kwargs": kwargs}


@task_function(description="Sleeps for `seconds` (default 1) in the scheduler process; stops early when cancelled.")
def sleep(seconds: float = 1, **kwargs):
    current_run().sleep(float(seconds))
    return {"slept": float(seconds)}


@task_function(
    description="Sleeps for `seconds` (default 5) on a Celery worker.",
    offload=True,
    timeout=3600,
)
def sleep_offloaded(seconds: float = 5, **kwargs):
    current_run().sleep(float(seconds))
    return {"slept": float(seconds)}


class TaskFunctionFailure(Exception):
    """Raised on purpose by the `fail` task function."""


@task_function(description="Raises an error with `message`, to see how failures are recorded.")
def fail(message: str = "failed on purpose", **kwargs):
    raise TaskFunctionFailure(message)


@task_function(
    description="Deletes finished executions older than `older_than_days` (default: SCHEDULER_HISTORY_RETENTION_DAYS)."
)
def cleanup_executions(older_than_days: int | None = None, **kwargs):
    deleted = executions_cleanup(older_than_days=older_than_days)
    return {"deleted": deleted}

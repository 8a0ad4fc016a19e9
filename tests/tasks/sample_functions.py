"""Task functions that exist only for the registry tests (loaded through SCHEDULER_TASK_MODULES)."""

from scheduler.registry import task_function


@task_function(description="Answers pong.", queue="fast", timeout=5)
def ping(**kwargs):
    return "pong"

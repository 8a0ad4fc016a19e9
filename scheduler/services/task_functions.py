"""Services for task functions: syncing the code registry into the table and resolving a job's function."""

from django.db import transaction

from scheduler import registry
from scheduler.backends import backend_for
from scheduler.models import TaskFunction


class TaskFunctionUnavailable(Exception):
    """The job's task function cannot run: inactive, or no longer registered in code."""


def task_functions_sync(*, using: str = "default") -> dict[str, list[str]]:
    """Mirror the registry into TaskFunction: add and update rows, mark vanished ones inactive."""
    registry.load()
    summary = {"created": [], "updated": [], "deactivated": []}
    with transaction.atomic(using=using):
        # Processes starting together would otherwise both insert a new function's row.
        backend_for(using).code_sync_lock(using)
        existing = {tf.name: tf for tf in TaskFunction.objects.using(using).select_for_update()}
        for spec in registry.specs():
            values = {
                "description": spec.description,
                "offload": spec.offload,
                "queue": spec.queue,
                "timeout": spec.timeout,
                "is_active": True,
            }
            row = existing.pop(spec.name, None)
            if row is None:
                TaskFunction.objects.using(using).create(name=spec.name, **values)
                summary["created"].append(spec.name)
            elif any(getattr(row, field) != value for field, value in values.items()):
                for field, value in values.items():
                    setattr(row, field, value)
                row.save(using=using)
                summary["updated"].append(spec.name)
        for row in existing.values():
            if row.is_active:
                row.is_active = False
                row.save(using=using, update_fields=["is_active", "updated_at"])
                summary["deactivated"].append(row.name)
    return summary


def task_function_resolve(name: str, *, active: bool) -> registry.TaskSpec:
    """The registered code for a task function (its name and whether its row is active); refuses
    inactive or unregistered ones."""
    if not active:
        raise TaskFunctionUnavailable(
            f"Task function {name!r} is inactive: it is no longer registered in "
            f"code. Point the job at another task function."
        )
    try:
        return registry.get(name)
    except registry.TaskNotRegistered:
        raise TaskFunctionUnavailable(
            f"Task function {name!r} is not registered in this process's code "
            f"(SCHEDULER_TASK_MODULES). Run `manage.py sync_task_functions` after deploying."
        ) from None

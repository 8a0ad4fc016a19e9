"""Registry of task functions: only functions registered here can ever be run by a job."""

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings


class TaskNotRegistered(LookupError):
    """No task function of that name is registered in code."""


@dataclass(frozen=True)
class TaskSpec:
    name: str
    func: Callable
    description: str
    offload: bool
    queue: str
    timeout: int | None


_registry: dict[str, TaskSpec] = {}


def task_function(
    name: str | None = None,
    *,
    description: str = "",
    offload: bool = False,
    queue: str | None = None,
    timeout: int | None = None,
):
    """Register a function that jobs may run.

    offload=True sends runs to a Celery worker (long work); otherwise they run in the
    scheduler's thread pool (short work). timeout is in seconds; queue names the Celery queue.
    """
    if timeout is not None and timeout < 1:
        raise ValueError("timeout must be at least 1 second")

    def decorator(func):
        spec_name = name or f"{func.__module__}.{func.__name__}"
        existing = _registry.get(spec_name)
        if existing is not None and existing.func is not func:
            raise ValueError(f"Task function {spec_name!r} is registered twice.")
        doc = (func.__doc__ or "").strip().splitlines()
        _registry[spec_name] = TaskSpec(
            name=spec_name,
            func=func,
            description=description or (doc[0] if doc else ""),
            offload=offload,
            queue=queue or settings.SCHEDULER_DEFAULT_QUEUE,
            timeout=timeout,
        )
        return func

    return decorator


def load() -> None:
    """Import the modules listed in SCHEDULER_TASK_MODULES so their decorators run."""
    for module in settings.SCHEDULER_TASK_MODULES:
        importlib.import_module(module)


def get(name: str) -> TaskSpec:
    try:
        return _registry[name]
    except KeyError:
        raise TaskNotRegistered(f"No task function named {name!r} is registered in code.") from None


def specs() -> list[TaskSpec]:
    return sorted(_registry.values(), key=lambda spec: spec.name)

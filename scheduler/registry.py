"""Registry of task functions (only registered functions ever run) and the context of the run in progress."""

import contextlib
import importlib
import threading
import time
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


# --- the run a task function is part of ----------------------------------------------------------


class RunCancelled(Exception):
    """Raised by RunContext.check() and RunContext.sleep() once the run was asked to stop (a
    cancel, or its timeout passed); letting it propagate ends the run as cancelled or timed out."""


class RunContext:
    """What a task function may know about the run it is part of, while it runs.

    A Python thread cannot be killed from outside, so stopping an inline run is cooperative: the
    scheduler sets the request (a cancel from an operator or an overlap policy, or the run's
    timeout passing) and the function, polling `cancel_requested` or waiting through `sleep()`,
    returns or raises. The run is recorded as ended only when the function has returned.
    """

    def __init__(self, execution_id: int | None = None, *, attempt: int = 1, timeout: int | None = None):
        self.execution_id = execution_id
        self.attempt = attempt
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.cancel_reason = ""
        self._stop = threading.Event()

    @property
    def cancel_requested(self) -> bool:
        """True once the run should stop: cancelled, or past its timeout."""
        return self._stop.is_set() or self.timed_out

    @property
    def timed_out(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def cancel(self, reason: str = "") -> None:
        """Ask the run to stop (called by the scheduler, from another thread)."""
        self.cancel_reason = self.cancel_reason or reason or "cancelled"
        self._stop.set()

    def check(self) -> None:
        """Raise RunCancelled if the run should stop; call it between units of work."""
        if self.cancel_requested:
            raise RunCancelled(self.cancel_reason or ("timed out" if self.timed_out else "cancelled"))

    def sleep(self, seconds: float) -> None:
        """Sleep like time.sleep, but wake and raise RunCancelled as soon as the run should stop."""
        end = time.monotonic() + max(0.0, float(seconds))
        while True:
            self.check()
            now = time.monotonic()
            if now >= end:
                return
            wait = end - now
            if self.deadline is not None:
                wait = min(wait, max(0.0, self.deadline - now) + 0.001)
            self._stop.wait(wait)


_NO_RUN = RunContext()
_current = threading.local()
# execution id -> context of the runs in progress in this process, for whoever delivers a cancel.
_active: dict[int, RunContext] = {}
_active_lock = threading.Lock()


def current_run() -> RunContext:
    """The context of the run this thread is executing (outside a run: one that is never cancelled).

    A task function that may run long should poll `current_run().cancel_requested` or wait with
    `current_run().sleep(seconds)`, so that cancels and timeouts stop it promptly.
    """
    return getattr(_current, "run", None) or _NO_RUN


@contextlib.contextmanager
def run_context(execution_id: int, *, attempt: int = 1, timeout: int | None = None):
    """Make a RunContext current in this thread for the duration of one run (the run services)."""
    context = RunContext(execution_id, attempt=attempt, timeout=timeout)
    with _active_lock:
        _active[execution_id] = context
    _current.run = context
    try:
        yield context
    finally:
        _current.run = None
        with _active_lock:
            _active.pop(execution_id, None)


def run_cancel(execution_id: int, reason: str = "") -> bool:
    """Deliver a cancel request to a run in progress in this process; False if it is not here."""
    with _active_lock:
        context = _active.get(execution_id)
    if context is None:
        return False
    context.cancel(reason)
    return True


def runs_in_progress() -> list[int]:
    with _active_lock:
        return list(_active)

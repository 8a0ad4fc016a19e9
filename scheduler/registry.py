"""Registry of task functions (only registered functions ever run), the jobs declared beside them
in code, and the context of the run in progress."""

import contextlib
import dataclasses
import importlib
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.conf import settings


class TaskNotRegistered(LookupError):
    """No task function of that name is registered in code."""


@dataclass(frozen=True)
class JobDeclaration:
    """A job declared in code beside its task function, made by cron() or interval().

    Only the shape is checked here; sync_jobs validates the rest (the cron expression, the
    timezone, the ranges) through the job services, as for any job.
    """

    name: str | None
    cron_expression: str | None = None
    interval_days: int | None = None
    interval_hours: int | None = None
    interval_minutes: int | None = None
    interval_seconds: int | None = None
    timezone: str | None = None  # None: settings.TIME_ZONE when synced
    args: list = dataclasses.field(default_factory=list)
    kwargs: dict = dataclasses.field(default_factory=dict)
    description: str = ""
    priority: int = 0
    max_instances: int = 1
    misfire_grace_time: int = 60
    coalesce: bool = True
    enabled: bool = True  # the state a new job starts in; enable/disable belong to operators after that
    # Filled in by @task_function: the function the job runs and where it is declared.
    task_name: str = ""
    declared_in: str = ""

    @property
    def is_cron(self) -> bool:
        return self.cron_expression is not None


def cron(
    expression: str,
    *,
    name: str | None = None,
    timezone: str | None = None,
    args: Iterable = (),
    kwargs: dict | None = None,
    description: str = "",
    priority: int = 0,
    max_instances: int = 1,
    misfire_grace_time: int = 60,
    coalesce: bool = True,
    enabled: bool = True,
) -> JobDeclaration:
    """A cron job for @task_function(schedules=[...]): standard 5-field cron, in `timezone`."""
    if not isinstance(expression, str) or not expression.strip():
        raise ValueError("cron() needs a cron expression, e.g. cron('0 2 * * *').")
    return _declaration(
        name,
        cron_expression=expression.strip(),
        timezone=timezone,
        args=args,
        kwargs=kwargs,
        description=description,
        priority=priority,
        max_instances=max_instances,
        misfire_grace_time=misfire_grace_time,
        coalesce=coalesce,
        enabled=enabled,
    )


def interval(
    *,
    days: int = 0,
    hours: int = 0,
    minutes: int = 0,
    seconds: int = 0,
    name: str | None = None,
    timezone: str | None = None,
    args: Iterable = (),
    kwargs: dict | None = None,
    description: str = "",
    priority: int = 0,
    max_instances: int = 1,
    misfire_grace_time: int = 60,
    coalesce: bool = True,
    enabled: bool = True,
) -> JobDeclaration:
    """An interval job for @task_function(schedules=[...]): every days + hours + minutes + seconds."""
    parts = {"days": days, "hours": hours, "minutes": minutes, "seconds": seconds}
    for unit, value in parts.items():
        if not _is_int(value) or value < 0:
            raise ValueError(f"interval({unit}=...) must be a whole number >= 0, not {value!r}.")
    if not any(parts.values()):
        raise ValueError("interval() needs at least one of days, hours, minutes or seconds above 0.")
    return _declaration(
        name,
        **{f"interval_{unit}": value or None for unit, value in parts.items()},
        timezone=timezone,
        args=args,
        kwargs=kwargs,
        description=description,
        priority=priority,
        max_instances=max_instances,
        misfire_grace_time=misfire_grace_time,
        coalesce=coalesce,
        enabled=enabled,
    )


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _declaration(name, *, args, kwargs, **fields) -> JobDeclaration:
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ValueError(f"A declared job's name must be a non-empty string, not {name!r}.")
    if fields["timezone"] is not None and not isinstance(fields["timezone"], str):
        raise ValueError(f"timezone must be an IANA name such as 'Europe/Paris', not {fields['timezone']!r}.")
    if isinstance(args, (str, bytes, dict)) or not isinstance(args, Iterable):
        raise ValueError(f"args must be a list of positional arguments, not {args!r}.")
    kwargs = {} if kwargs is None else kwargs
    if not isinstance(kwargs, dict) or not all(isinstance(key, str) for key in kwargs):
        raise ValueError(f"kwargs must be a dict with string keys, not {kwargs!r}.")
    for option in ("priority", "max_instances", "misfire_grace_time"):
        if not _is_int(fields[option]):
            raise ValueError(f"{option} must be a whole number, not {fields[option]!r}.")
    for option in ("coalesce", "enabled"):
        if not isinstance(fields[option], bool):
            raise ValueError(f"{option} must be True or False, not {fields[option]!r}.")
    if not isinstance(fields["description"], str):
        raise ValueError(f"description must be a string, not {fields['description']!r}.")
    try:
        # Stored as JSON: what the job will be called with is what a JSON round trip gives back.
        args, kwargs = json.loads(json.dumps([list(args), kwargs], allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"args and kwargs must be JSON values (lists, dicts, strings, numbers): {exc}") from None
    return JobDeclaration(name=name.strip() if name else None, args=args, kwargs=kwargs, **fields)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    func: Callable
    description: str
    offload: bool
    queue: str
    timeout: int | None
    schedules: tuple[JobDeclaration, ...] = ()


_registry: dict[str, TaskSpec] = {}


def task_function(
    name: str | None = None,
    *,
    description: str = "",
    offload: bool = False,
    queue: str | None = None,
    timeout: int | None = None,
    schedules: Iterable[JobDeclaration] = (),
):
    """Register a function that jobs may run, and declare the jobs that run it.

    offload=True sends runs to a Celery worker (long work); otherwise they run in the
    scheduler's thread pool (short work). timeout is in seconds; queue names the Celery queue.
    schedules lists jobs declared in code, cron(...) or interval(...): `manage.py sync_jobs`
    (also run after migrate and at scheduler start) creates and updates them.
    """
    if timeout is not None and timeout < 1:
        raise ValueError("timeout must be at least 1 second")
    schedules = tuple(schedules)
    for declaration in schedules:
        if not isinstance(declaration, JobDeclaration):
            raise ValueError(f"schedules takes cron(...) and interval(...), not {declaration!r}.")

    def decorator(func):
        spec_name = name or f"{func.__module__}.{func.__name__}"
        existing = _registry.get(spec_name)
        if existing is not None and existing.func is not func:
            raise ValueError(f"Task function {spec_name!r} is registered twice.")
        bound = _bind(schedules, spec_name, f"{func.__module__}.{func.__qualname__}")
        doc = (func.__doc__ or "").strip().splitlines()
        _registry[spec_name] = TaskSpec(
            name=spec_name,
            func=func,
            description=description or (doc[0] if doc else ""),
            offload=offload,
            queue=queue or settings.SCHEDULER_DEFAULT_QUEUE,
            timeout=timeout,
            schedules=bound,
        )
        return func

    return decorator


def _bind(schedules: tuple[JobDeclaration, ...], task_name: str, declared_in: str) -> tuple[JobDeclaration, ...]:
    """The declarations with their function filled in; job names must be unique across the code."""
    bound = tuple(
        dataclasses.replace(d, name=d.name or task_name, task_name=task_name, declared_in=declared_in)
        for d in schedules
    )
    names = [d.name for d in bound]
    for job_name in names:
        if names.count(job_name) > 1:
            raise ValueError(f"{declared_in} declares the job {job_name!r} twice: give each of its schedules a name=.")
    for other in _registry.values():
        if other.name == task_name:
            continue
        for declaration in other.schedules:
            if declaration.name in names:
                raise ValueError(
                    f"The job {declaration.name!r} is declared twice: by {declaration.declared_in} and {declared_in}."
                )
    return bound


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


def declarations() -> list[JobDeclaration]:
    """Every job declared in code, by job name."""
    return sorted((d for spec in _registry.values() for d in spec.schedules), key=lambda d: d.name)


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
# Changed and read with single dict operations, atomic in CPython, and no lock: every worker thread
# adds and removes an entry per run, and a lock they all take twice per run turned into a convoy
# when a crowd of runs started (engine/runner.py says how).
_active: dict[int, RunContext] = {}


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
    _active[execution_id] = context
    _current.run = context
    try:
        yield context
    finally:
        _current.run = None
        _active.pop(execution_id, None)


def run_cancel(execution_id: int, reason: str = "") -> bool:
    """Deliver a cancel request to a run in progress in this process; False if it is not here."""
    context = _active.get(execution_id)
    if context is None:
        return False
    context.cancel(reason)
    return True


def runs_in_progress() -> list[int]:
    return list(_active)

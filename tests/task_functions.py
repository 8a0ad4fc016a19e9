"""Task functions registered only in tests (SCHEDULER_TASK_MODULES adds this module)."""

import logging
import os
import time
from pathlib import Path

from scheduler.registry import current_run, task_function


@task_function(description="Offloaded run that raises.", offload=True)
def fail_offloaded(message: str = "failed on a worker", **kwargs):
    raise RuntimeError(message)


@task_function(description="Offloaded run with a 2-second timeout.", offload=True, timeout=2)
def sleep_with_timeout(seconds: float = 10, **kwargs):
    time.sleep(float(seconds))
    return {"slept": float(seconds)}


@task_function(description="Offloaded run that records when it started.", offload=True)
def record_order(label: str = "", seconds: float = 0.3, **kwargs):
    time.sleep(float(seconds))
    return {"label": label, "at": time.time()}


@task_function(description="Inline run that sleeps `seconds` (stopping early when cancelled), then raises.")
def sleep_then_fail(seconds: float = 0.5, message: str = "failed after sleeping", **kwargs):
    current_run().sleep(float(seconds))
    raise RuntimeError(message)


@task_function(
    description="Offloaded run that ignores cancel requests, leaving <marker>.started / .finished.", offload=True
)
def sleep_ignoring_cancels(seconds: float = 30, marker: str = "", **kwargs):
    # Only killing its process stops it before `seconds`: the .finished file shows it ran to the end.
    Path(f"{marker}.started").write_text(str(os.getpid()))
    time.sleep(float(seconds))
    Path(f"{marker}.finished").write_text(str(os.getpid()))
    return {"slept": float(seconds)}


@task_function(description="Offloaded run that logs `lines` lines, then fails if asked to.", offload=True)
def log_offloaded(lines: int = 3, fail: bool = False, **kwargs):
    for number in range(int(lines)):
        logging.getLogger("tests.worker").info("worker line %d", number + 1)
    if fail:
        raise RuntimeError("failed after logging")
    return {"logged": int(lines)}

"""Jobs declared in code for the tests that sync them in other processes (their SCHEDULER_TASK_MODULES
adds this module). TEST_DECLARED_JOB_COUNT sets how many cron jobs, TEST_DECLARED_JOB_HOUR their hour."""

import os

from scheduler.registry import cron, interval, task_function

COUNT = int(os.environ.get("TEST_DECLARED_JOB_COUNT", "3"))
HOUR = int(os.environ.get("TEST_DECLARED_JOB_HOUR", "2"))


@task_function(
    schedules=[cron(f"{i % 60} {HOUR} * * *", name=f"declared {i:03d}") for i in range(COUNT)]
    + [interval(seconds=1, name="declared every second")]
)
def declared_report(**kwargs):
    """Runs for the declared jobs of the multi-process tests."""
    return "ran"

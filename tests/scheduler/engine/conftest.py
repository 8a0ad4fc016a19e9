"""Harness for engine tests: real `runscheduler` subprocesses against the test database."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from scheduler.models import JobType
from scheduler.services.task_functions import task_functions_sync

MANAGE = Path(settings.BASE_DIR) / "manage.py"


def wait_until(predicate, timeout: float, message: str, interval: float = 0.1):
    """Poll `predicate` until it returns something truthy; fail with `message` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout}s waiting for: {message}")
        time.sleep(interval)


def database_url() -> str:
    """The URL of the database this test uses, for the subprocesses."""
    params = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{params['NAME']}"
    auth = params["USER"] + (f":{params['PASSWORD']}" if params.get("PASSWORD") else "")
    return f"postgres://{auth}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/{params['NAME']}"


class SchedulerProc:
    def __init__(self, args, env, log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.popen = subprocess.Popen(
            [sys.executable, str(MANAGE), "runscheduler", *args],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self):
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_started(self, timeout=30):
        wait_until(lambda: " started: " in self.log() or self.popen.poll() is not None, timeout, "scheduler start")
        assert self.popen.poll() is None, f"scheduler exited early:\n{self.log()}"

    def terminate(self, timeout=30) -> int:
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout)

    def kill(self):
        self.popen.kill()
        self.popen.wait(10)

    def close(self):
        if self.popen.poll() is None:
            self.kill()
        self._log.close()


@pytest.fixture
def engine_db(transactional_db):
    """Committed data visible to subprocesses; restores the rows migrations create."""
    for pk, name in ((JobType.INTERVAL, "interval"), (JobType.CRON, "cron"), (JobType.DATE, "date")):
        JobType.objects.update_or_create(pk=pk, defaults={"name": name})
    task_functions_sync()


@pytest.fixture
def start_scheduler(engine_db, tmp_path):
    procs = []

    def start(*args, env=None, wait=True) -> SchedulerProc:
        full_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url(),
            "SCHEDULER_HEARTBEAT_INTERVAL": "1",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        proc = SchedulerProc(args, full_env, tmp_path / f"scheduler-{len(procs)}.log")
        procs.append(proc)
        if wait:
            proc.wait_started()
        return proc

    yield start
    for proc in procs:
        proc.close()

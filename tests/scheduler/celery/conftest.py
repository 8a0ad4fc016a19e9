"""Harness for Celery tests: a real Redis broker and a real `celery worker` subprocess."""

import os
import signal
import subprocess
import sys
import uuid

import pytest
from django.conf import settings

from tests.scheduler.engine.conftest import database_url, engine_db, start_scheduler, wait_until  # noqa: F401

TEST_TASK_MODULES = "tasks.functions,tests.task_functions"


@pytest.fixture
def celery_env(redis_url):
    """Environment shared by the worker and the scheduler: one private queue per test."""
    queue = f"test-{uuid.uuid4().hex[:10]}"
    return {
        "CELERY_BROKER_URL": redis_url,
        "SCHEDULER_DEFAULT_QUEUE": queue,
        "SCHEDULER_TASK_MODULES": TEST_TASK_MODULES,
    }


class WorkerProc:
    def __init__(self, env, log_path, queue):
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.name = f"{queue}@%h"
        self.popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                "1",
                "--queues",
                queue,
                "--hostname",
                self.name,
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self):
        return self.log_path.read_text()

    def kill_all(self):
        """SIGKILL the worker and its pool processes, as a crashed machine would."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(10)

    def close(self):
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.kill_all()
        self._log.close()


@pytest.fixture
def start_worker(engine_db, celery_env, tmp_path):  # noqa: F811 (the fixture imported above)
    workers = []

    def start(extra_env=None) -> WorkerProc:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url(),
            "PYTHONUNBUFFERED": "1",
            **celery_env,
            **(extra_env or {}),
        }
        worker = WorkerProc(env, tmp_path / f"worker-{len(workers)}.log", celery_env["SCHEDULER_DEFAULT_QUEUE"])
        workers.append(worker)
        wait_until(lambda: " ready." in worker.log() or worker.popen.poll() is not None, 60, "worker ready")
        assert worker.popen.poll() is None, worker.log()
        return worker

    yield start
    for worker in workers:
        worker.close()

"""Shared plumbing: the benchmark database, subprocesses, /proc readings, clocks and statistics."""

import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "manage.py"
VENV_BIN = Path(sys.executable).parent
ARTIFACTS = ROOT / "artifacts"
LOGS = ARTIFACTS / "bench-logs"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def server_url() -> str:
    return os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")


def database_name() -> str:
    return os.environ.get("BENCH_DATABASE", "scheduler_bench")


def database_url() -> str:
    return f"{server_url().rstrip('/')}/{database_name()}"


def redis_url() -> str:
    return os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


# One benchmark per PostgreSQL server at a time: a second run would drop the database under the first.
_RUN_LOCK = 6_000_006


def run_lock() -> psycopg.Connection:
    """Take the server-wide advisory lock for this run; it is held until the returned connection closes."""
    conn = psycopg.connect(f"{server_url().rstrip('/')}/postgres", autocommit=True)
    if not conn.execute("SELECT pg_try_advisory_lock(%s)", [_RUN_LOCK]).fetchone()[0]:
        conn.close()
        raise SystemExit(
            "Another benchmark is running against this PostgreSQL server (it holds the benchmark's "
            "advisory lock); wait for it to finish: two runs would drop each other's database."
        )
    return conn


def database_recreate() -> None:
    """Drop and create the benchmark database (never any other one)."""
    name = database_name()
    if "bench" not in name:
        raise SystemExit(f"Refusing to drop {name!r}: the benchmark database's name must contain 'bench'.")
    with psycopg.connect(f"{server_url().rstrip('/')}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def now() -> datetime:
    return datetime.now(UTC)


def to_dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def sleep_until(ts: float) -> None:
    delay = ts - time.time()
    if delay > 0:
        time.sleep(delay)


def wait_for(predicate, timeout: float, interval: float = 0.1):
    """Poll until `predicate` returns something truthy (returned) or the timeout passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


# --- subprocesses ---------------------------------------------------------------------------------


def product_env(**extra) -> dict:
    """Environment of the product's own processes: production settings, no broker (inline noop)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DJANGO_SETTINGS"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY="bench-only-key-not-for-any-deployment",
        SECURE_SSL_REDIRECT="false",
        DATABASE_URL=database_url(),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def baseline_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DJANGO_SETTINGS"))}
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DATABASE_URL=database_url(),
        BENCH_REDIS_URL=redis_url(),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Proc:
    """A subprocess with its log in artifacts/bench-logs, its start time, CPU and memory."""

    def __init__(self, argv, *, env, name: str):
        LOGS.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = LOGS / f"{name}.log"
        self._log = open(self.log_path, "w")
        self.started = time.time()
        self.popen = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cpu_seconds(self) -> float:
        """utime + stime of the process so far (all its threads)."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def memory_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) in MB: resident memory now and its peak."""
        values = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0]) / 1024
        return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)

    def stop(self, timeout: float = 40) -> int | None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self._log.close()
        return self.popen.returncode


def scheduler_start(name: str, *args: str) -> Proc:
    return Proc([sys.executable, str(MANAGE), "runscheduler", *args], env=product_env(), name=name)


def scheduler_wait_started(proc: Proc, timeout: float = 60) -> None:
    if not wait_for(lambda: " started: " in proc.log() or not proc.alive(), timeout) or not proc.alive():
        raise RuntimeError(f"{proc.name} did not start; see {proc.log_path}:\n{proc.log()[-3000:]}")


def stop_all(procs) -> None:
    for proc in procs:
        if proc.alive():
            proc.popen.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.stop()


# --- statistics -----------------------------------------------------------------------------------


def percentile(values, p: float) -> float | None:
    """The p-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class Series:
    """Repeated measurements of one figure: its median and spread (min-max)."""

    def __init__(self, values=()):
        self.values = [v for v in values if v is not None]

    def add(self, value) -> None:
        if value is not None:
            self.values.append(value)

    @property
    def median(self):
        return statistics.median(self.values) if self.values else None

    @property
    def low(self):
        return min(self.values) if self.values else None

    @property
    def high(self):
        return max(self.values) if self.values else None

    def __bool__(self):
        return bool(self.values)

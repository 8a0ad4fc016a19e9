"""Baselines: django-celery-beat's DatabaseScheduler fed the same jobs, and pgbench's INSERT rate."""

import math
import re
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from bench import data
from bench.harness import (
    VENV_BIN,
    Proc,
    baseline_env,
    database_url,
    redis_url,
    sleep_until,
    to_dt,
    wait_for,
)
from bench.ours import _window_start


class Broker:
    """The private Redis database beat publishes to; nothing consumes it, so its lists count sends."""

    def __init__(self):
        self.client = redis.Redis.from_url(redis_url())

    def flush(self) -> None:
        self.client.flushdb()

    def sent(self) -> int:
        total = 0
        for key in self.client.scan_iter("celery*"):
            if self.client.type(key) == b"list":
                total += self.client.llen(key)
        return total


def _beat_start(name: str) -> Proc:
    return Proc(
        [
            str(VENV_BIN / "celery"),
            "-A",
            "bench.celeryapp",
            "beat",
            "-S",
            "django_celery_beat.schedulers:DatabaseScheduler",
            "--schedule",
            str(Path(tempfile.gettempdir()) / "bench-celerybeat-schedule"),
        ],
        env=baseline_env(),
        name=name,
    )


def _probe_insert(prefix: str) -> None:
    """A task due as soon as beat starts: its message marks the end of beat's start-up."""
    data.beat_interval_tasks_insert(prefix, 1, seconds=86400, last_run_at=to_dt(time.time() - 86400 - 60))


def _probe_rearm(prefix: str) -> None:
    data.sql(
        "UPDATE django_celery_beat_periodictask SET last_run_at = now() - interval '1 day 1 minute' WHERE name LIKE %s",
        [prefix + "%"],
    )
    data.beat_changed()


def _started(proc: Proc, broker: Broker, timeout: float) -> float | None:
    """Seconds from spawn until beat published its first message (the probe's)."""
    if not wait_for(lambda: broker.sent() >= 1 or not proc.alive(), timeout, interval=0.05):
        return None
    if not proc.alive():
        raise RuntimeError(f"{proc.name} exited; see {proc.log_path}:\n{proc.log()[-3000:]}")
    return time.time() - proc.started


def burst(*, jobs: int, tag: str, window: float, lead: float = 8.0) -> dict:
    """`jobs` PeriodicTasks all due at one moment: how many messages beat publishes, and how fast."""
    data.beat_reset()
    broker = Broker()
    broker.flush()
    _probe_insert(f"{tag}-probe")
    # Due in an hour for now: beat loads them at start, as it would load an existing schedule.
    data.beat_interval_tasks_insert(f"{tag}-", jobs, seconds=3600, last_run_at=to_dt(time.time()))
    proc = _beat_start(tag)
    try:
        startup = _started(proc, broker, 300)
        if startup is None:
            raise RuntimeError(f"{proc.name} sent nothing; see {proc.log_path}")
        # Now make them all due at one moment; beat sees the change within its 5 s loop.
        due_ts = time.time() + lead
        data.sql(
            "UPDATE django_celery_beat_periodictask SET last_run_at = %s WHERE name LIKE %s AND name NOT LIKE %s",
            [to_dt(due_ts - 3600), f"{tag}-%", f"{tag}-probe%"],
        )
        data.beat_changed()
        base = broker.sent()
        sleep_until(due_ts)
        cpu0 = proc.cpu_seconds()
        done_at = wait_for(lambda: time.time() if broker.sent() - base >= jobs else None, window, interval=0.1)
        end = done_at or time.time()
        sent = broker.sent() - base
        cpu = proc.cpu_seconds() - cpu0
        rss = proc.memory_mb()[1]
    finally:
        proc.stop()
    elapsed = end - due_ts
    rate = sent / elapsed if elapsed > 0 else 0.0
    return {
        "startup": startup,
        "sent": sent,
        "complete": bool(done_at),
        # Not all sent within the window: the time all would take at the rate seen.
        "seconds": elapsed if done_at else (jobs / rate if rate else None),
        "rate": rate,
        "cpu_per_second": cpu / elapsed if elapsed > 0 else None,
        "peak_rss_mb": rss,
    }


def steady(*, per_second: int, window: float, tag: str, lead: float = 8.0) -> dict:
    """`per_second` interval PeriodicTasks at 1 s, spread over the second as ours are: messages
    sent in the window against those due, and beat's CPU per message."""
    data.beat_reset()
    broker = Broker()
    broker.flush()
    _probe_insert(f"{tag}-probe")
    proc = _beat_start(tag)
    try:
        if _started(proc, broker, 120) is None:
            raise RuntimeError(f"{proc.name} sent nothing; see {proc.log_path}")
        # First sends at t0 + k / per_second; beat sees the new tasks within its 5 s loop.
        t0 = math.ceil(time.time() + lead)
        data.beat_interval_tasks_insert(f"{tag}-", per_second, seconds=1, last_run_at=to_dt(t0 - 1), spread=1.0)
        # From a second after the first sends, as for ours: beat's reload of the tasks is behind it.
        sleep_until(t0 + 1)
        cpu0, sent0 = proc.cpu_seconds(), broker.sent()
        sleep_until(t0 + 1 + window)
        cpu, sent = proc.cpu_seconds() - cpu0, broker.sent() - sent0
        rss = proc.memory_mb()[1]
    finally:
        proc.stop()
    return {
        "expected": int(per_second * window),
        "sent": sent,
        "cpu_seconds": cpu,
        "cpu_ms_per_message": 1000 * cpu / sent if sent else None,
        "cpu_share": cpu / window,
        "peak_rss_mb": rss,
    }


def scale(*, jobs: int, minutes: int, repeats: int, tag: str) -> dict:
    """`jobs` crontab PeriodicTasks spread over the hour: start-up, memory, CPU, and sends per due run."""
    data.beat_reset()
    broker = Broker()
    data.beat_cron_tasks_insert(f"{tag}-", jobs)
    _probe_insert(f"{tag}-probe")
    startups, start_rss = [], []
    proc = None
    for attempt in range(repeats):
        broker.flush()
        _probe_rearm(f"{tag}-probe")
        proc = _beat_start(f"{tag}-{attempt}")
        startup = _started(proc, broker, 600)
        if startup is None:
            proc.stop()
            raise RuntimeError(f"{proc.name} sent nothing within 600 s; see {proc.log_path}")
        startups.append(startup)
        start_rss.append(proc.memory_mb()[0])
        if attempt < repeats - 1:
            proc.stop()
    try:
        w0 = _window_start(time.time() + 2)
        sleep_until(w0)
        cpu_marks, sent_marks = [proc.cpu_seconds()], [broker.sent()]
        for minute in range(1, minutes + 1):
            sleep_until(w0 + 60 * minute)
            cpu_marks.append(proc.cpu_seconds())
            sent_marks.append(broker.sent())
        rss_now, rss_peak = proc.memory_mb()
    finally:
        proc.stop()
    boundaries = [to_dt((math.floor(w0 / 60) + k) * 60) for k in range(1, minutes + 1)]
    due = sum(jobs // 60 + (1 if b.minute < jobs % 60 else 0) for b in boundaries)
    return {
        "jobs": jobs,
        "startup": startups,
        "start_rss": start_rss,
        "rss_end": rss_now,
        "rss_peak": rss_peak,
        "cpu_per_minute": [b - a for a, b in zip(cpu_marks, cpu_marks[1:])],
        "sent_per_minute": [b - a for a, b in zip(sent_marks, sent_marks[1:])],
        "expected": due,
        "sent": sent_marks[-1] - sent_marks[0],
    }


def propagation(*, repeats: int, tag: str = "beat-propagation") -> dict:
    """Edit a PeriodicTask's interval to 1 s through the ORM (as its admin does): time to its first send."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    data.beat_reset()
    broker = Broker()
    broker.flush()
    _probe_insert(f"{tag}-probe")
    proc = _beat_start(tag)
    times = []
    try:
        if _started(proc, broker, 120) is None:
            raise RuntimeError(f"{proc.name} sent nothing; see {proc.log_path}")
        hourly = IntervalSchedule.objects.create(every=3600, period=IntervalSchedule.SECONDS)
        every_second = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
        for attempt in range(repeats):
            task = PeriodicTask.objects.create(
                name=f"{tag}-{attempt}",
                task="bench.noop",
                interval=hourly,
                last_run_at=to_dt(time.time() - 1800),  # ran half an hour ago, as ours did
            )
            time.sleep(6.0)  # beat has loaded it and sleeps in its 5 s loop
            base = broker.sent()
            edited = time.time()
            task.interval = every_second
            task.save()  # its signal marks the schedule changed, as an admin edit does
            sent = wait_for(lambda: time.time() if broker.sent() > base else None, 30, interval=0.02)
            if sent:
                times.append(sent - edited)
            task.enabled = False
            task.save()
            time.sleep(1.0)
    finally:
        proc.stop()
    return {"edit": times}


def pgbench(*, seconds: int, repeats: int) -> dict:
    """Single-row INSERT transactions per second with 2 clients: the database's own limit here."""
    data.sql(
        "CREATE TABLE IF NOT EXISTS bench_pgbench_insert "
        "(id bigserial PRIMARY KEY, payload integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
    )
    rates = []
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write("INSERT INTO bench_pgbench_insert (payload) VALUES (1);\n")
    try:
        for _ in range(repeats):
            out = subprocess.run(
                [
                    "pgbench",
                    "--no-vacuum",
                    "--client",
                    "2",
                    "--jobs",
                    "2",
                    "--time",
                    str(seconds),
                    "--file",
                    script.name,
                    database_url(),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
            rates.append(float(match.group(1)))
    finally:
        Path(script.name).unlink()
        data.sql("DROP TABLE IF EXISTS bench_pgbench_insert")
    return {"rate": rates}

"""Our engine measured through real `manage.py runscheduler` processes: burst, scale, lag, propagation."""

import json
import math
import signal
import subprocess
import time
import urllib.request
from datetime import timedelta

from bench import data
from bench.harness import (
    ARTIFACTS,
    VENV_BIN,
    Proc,
    product_env,
    scheduler_start,
    scheduler_wait_started,
    sleep_until,
    stop_all,
    to_dt,
    wait_for,
)


def _start_schedulers(tag: str, processes: int) -> list[Proc]:
    procs = [scheduler_start(f"{tag}-{k}") for k in range(processes)]
    for proc in procs:
        scheduler_wait_started(proc)
    return procs


def _profile(proc: Proc, seconds: float, name: str) -> subprocess.Popen:
    """py-spy record of a running scheduler into artifacts/: samples of the thread holding the GIL."""
    ARTIFACTS.mkdir(exist_ok=True)
    return subprocess.Popen(
        [
            str(VENV_BIN / "py-spy"),
            "record",
            "--pid",
            str(proc.pid),
            "--duration",
            str(math.ceil(seconds)),
            "--rate",
            "200",
            "--gil",
            "--format",
            "raw",
            "--output",
            str(ARTIFACTS / f"{name}.txt"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def burst(
    *, jobs: int, processes: int, tag: str, lead: float = 3.0, timeout: float = 300.0, profile: bool = False
) -> dict:
    """`jobs` interval jobs all due at one moment: seconds until every run is `success`, runs per second."""
    data.product_reset()
    procs = _start_schedulers(tag, processes)
    try:
        time.sleep(1.0)  # let the first wake-up pass finish: the process is idle, as in production
        due_ts = time.time() + lead
        data.interval_jobs_insert(f"{tag}-", jobs, seconds=3600, first_run=to_dt(due_ts))
        ids = data.job_ids(f"{tag}-")
        spy = _profile(procs[0], lead + 30, f"profile-{tag}") if profile else None
        cpu_before = [p.cpu_seconds() for p in procs]
        finished = wait_for(lambda: data.success_count(ids) >= jobs, lead + timeout, interval=0.25)
        cpu = sum(p.cpu_seconds() for p in procs) - sum(cpu_before)
        rss = max(p.memory_mb()[1] for p in procs)
        if spy:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it has recorded so far
            spy.wait()
        first_start, last_finish = data.sql(
            "SELECT min(started_at), max(finished_at) FROM scheduler_jobexecution WHERE job_id BETWEEN %s AND %s",
            list(ids),
            fetch="one",
        )
        statuses = data.status_counts(ids)
    finally:
        stop_all(procs)
    due = to_dt(due_ts)
    done = statuses.get("success", 0)
    if finished and last_finish:
        seconds = (last_finish - due).total_seconds()
    else:
        seconds = None
    return {
        "seconds": seconds,
        "rate": jobs / seconds if seconds else (done / timeout if done else 0.0),
        "first_start": (first_start - due).total_seconds() if first_start else None,
        "statuses": statuses,
        "complete": bool(finished),
        "cpu_seconds": cpu,
        "peak_rss_mb": rss,
    }


def _window_start(after: float) -> float:
    """The first instant at or after `after` whose second-of-minute is within [20, 40]:
    every 60 s window from there holds exactly one minute boundary, away from its edges."""
    second = after % 60
    if 20 <= second <= 40:
        return after
    return after - second + (20 if second < 20 else 80)


def scale(*, jobs: int, minutes: int, repeats: int, tag: str, profile: bool = False, settle: float = 0.0) -> dict:
    """`jobs` cron jobs spread over the hour: start-up to first run, memory, CPU per minute, on-time runs.

    Runs are scored by their fire time (scheduled_time at the boundary), whenever they started;
    `settle` seconds at most are given after the window for the due runs not yet started to start,
    so that a late run shows as lag rather than as missing."""
    data.product_reset()
    prefix = f"{tag}-"
    t_insert = time.monotonic()
    data.cron_jobs_insert(prefix, jobs)
    insert_seconds = time.monotonic() - t_insert
    ids = data.job_ids(prefix)
    probe_name = f"{tag}-startup-probe"
    data.interval_jobs_insert(probe_name, 1, seconds=86400, first_run=to_dt(time.time() + 86400))
    probe_id = data.job_ids(probe_name)[0]

    startups, start_rss = [], []
    proc = None
    for attempt in range(repeats):
        # The probe is due before the process starts: its first run ends the start-up.
        data.sql("UPDATE scheduler_scheduledjob SET next_run_time = now() WHERE id = %s", [probe_id])
        before = data.sql(
            "SELECT coalesce(max(id), 0) FROM scheduler_jobexecution WHERE job_id = %s", [probe_id], fetch="one"
        )[0]
        proc = scheduler_start(f"{tag}-{attempt}")
        started = wait_for(
            lambda: data.sql(
                "SELECT started_at FROM scheduler_jobexecution WHERE job_id = %s AND id > %s "
                "AND started_at IS NOT NULL",
                [probe_id, before],
                fetch="one",
            ),
            120,
            interval=0.02,
        )
        if not started:
            proc.stop()
            raise RuntimeError(f"{proc.name} never ran its first job; see {proc.log_path}")
        startups.append(started[0].timestamp() - proc.started)
        if startups[-1] <= 0:
            proc.stop()
            raise RuntimeError(f"{proc.name}: the probe's run predates the process; the measurement is broken")
        start_rss.append(proc.memory_mb()[0])
        if attempt < repeats - 1:
            proc.stop()

    try:
        w0 = _window_start(time.time() + 2)
        sleep_until(w0)
        spy = _profile(proc, 60, f"profile-{tag}") if profile else None
        cpu_marks = [proc.cpu_seconds()]
        for minute in range(1, minutes + 1):
            sleep_until(w0 + 60 * minute)
            cpu_marks.append(proc.cpu_seconds())
        if spy:
            spy.wait()
        rss_now, rss_peak = proc.memory_mb()
        boundaries = [to_dt((math.floor(w0 / 60) + k) * 60) for k in range(1, minutes + 1)]
        due = [data.cron_jobs_due_at(prefix, [b.minute]) for b in boundaries]

        # Every run of a boundary's fire time, by scheduled_time: cron jobs fire exactly at it.
        def fired():
            return [data.runs_between(ids, b, b + timedelta(seconds=1)) for b in boundaries]

        def all_started():
            rows = fired()
            return rows if all(sum(r[1] is not None for r in b) >= n for b, n in zip(rows, due)) else None

        # The last boundary is 20-40 s behind us; give its runs a moment to record their end.
        per_boundary = (wait_for(all_started, settle, interval=1.0) if settle else None) or fired()
    finally:
        proc.stop()
    per_minute = [b - a for a, b in zip(cpu_marks, cpu_marks[1:])]
    rows = [r for b in per_boundary for r in b]
    ran = [r for r in rows if r[0] == "success"]
    return {
        "jobs": jobs,
        "insert_seconds": insert_seconds,
        "startup": startups,
        "start_rss": start_rss,
        "rss_end": rss_now,
        "rss_peak": rss_peak,
        "cpu_per_minute": per_minute,
        "cpu_ms_per_run": 1000 * sum(per_minute) / len(ran) if ran else None,
        "expected": sum(due),
        "ran": len(ran),
        "not_success": len(rows) - len(ran),
        "lag": data.lag_stats(r[1] for r in ran),
        "boundaries": [_boundary(at, n, b) for at, n, b in zip(boundaries, due, per_boundary)],
    }


def _boundary(at, due: int, rows) -> dict:
    """One minute boundary: runs due, ran (success), not success, and the lag of every run that
    started (its max is the time from the boundary to the last run's start)."""
    ran = [r for r in rows if r[0] == "success"]
    return {
        "at": f"{at:%H:%M}",
        "due": due,
        "ran": len(ran),
        "not_success": len(rows) - len(ran),
        "lag": data.lag_stats(r[1] for r in rows),
    }


def lag(*, processes: int, window: float, tag: str, per_second: int = 50, profile: bool = False) -> dict:
    """`per_second` interval jobs at 1 s, anchors spread over the second: start - scheduled time,
    and the schedulers' CPU per run started."""
    data.product_reset()
    procs = _start_schedulers(tag, processes)
    try:
        time.sleep(1.0)
        t0 = math.ceil(time.time()) + 3
        data.interval_jobs_insert(f"{tag}-", per_second, seconds=1, first_run=to_dt(t0), spread=1.0)
        ids = data.job_ids(f"{tag}-")
        # CPU from a second after the first fire time: the load of the new jobs and the first
        # claims are behind us, so the window holds the steady state only.
        cpu_from, cpu_to = t0 + 1, t0 + window
        sleep_until(cpu_from)
        cpu0 = sum(p.cpu_seconds() for p in procs)
        spy = _profile(procs[0], cpu_to - cpu_from, f"profile-{tag}") if profile else None
        sleep_until(cpu_to)
        cpu = sum(p.cpu_seconds() for p in procs) - cpu0
        if spy is not None:
            spy.wait()
        sleep_until(t0 + window + 2)
        rows = data.runs_between(ids, to_dt(t0), to_dt(t0 + window))
        started = data.runs_started_count(ids, to_dt(cpu_from), to_dt(cpu_to))
        statuses = data.status_counts(ids)
    finally:
        stop_all(procs)
    ran = [r for r in rows if r[0] == "success"]
    return {
        "expected": int(per_second * window),
        "ran": len(ran),
        "not_success": len(rows) - len(ran),
        "statuses": statuses,
        "lag": data.lag_stats(r[1] for r in ran),
        "cpu_seconds": cpu,
        "cpu_window": cpu_to - cpu_from,
        "cpu_runs": started,
        "cpu_ms_per_run": 1000 * cpu / started if started else None,
        # Of one core: the processes' CPU seconds per second of the window.
        "cpu_share": cpu / (cpu_to - cpu_from),
    }


# --- propagation through the REST API ---------------------------------------------------------------


def _api_server(port: int) -> Proc:
    return Proc(
        [
            str(VENV_BIN / "gunicorn"),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--log-level",
            "warning",
        ],
        env=product_env(),
        name="propagation-gunicorn",
    )


def _api(port: int, token: str, method: str, path: str, body=None):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/scheduler/{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read() or b"null")


def _api_token() -> str:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_superuser": True, "is_staff": True}
    )
    return Token.objects.get_or_create(user=user)[0].key


def propagation(*, repeats: int, port: int = 8765) -> dict:
    """PATCH a job's interval to 1 s through the API: time to its first run; and a manual trigger."""
    from scheduler.models import JobType, ScheduledJob, TaskFunction
    from scheduler.services.jobs import job_create, job_delete

    data.product_reset()
    token = _api_token()
    server = _api_server(port)
    procs = _start_schedulers("propagation", 1)
    edit, wait, heard, trigger = [], [], [], []
    try:
        if not wait_for(lambda: _healthy(port), 60, interval=0.2):
            raise RuntimeError(f"the API server did not answer; see {server.log_path}")
        for _ in range(6):  # every worker has loaded the API's code before anything is timed
            _api(port, token, "GET", "jobs")
        function = TaskFunction.objects.get(name=data.NOOP)
        for attempt in range(repeats):
            job = job_create(
                name=f"propagation-{attempt}",
                task_function_id=function.pk,
                job_type_id=JobType.INTERVAL,
                interval_hours=1,
            )
            # An hourly job that last ran half an hour ago: it is not due again for 30 minutes.
            data.sql(
                "UPDATE scheduler_scheduledjob SET last_run_time = now() - interval '30 minutes', "
                "next_run_time = now() + interval '30 minutes' WHERE id = %s",
                [job.pk],
            )
            time.sleep(2.0)  # the scheduler is asleep until its next poll
            sent = time.time()
            status, _ = _api(port, token, "PATCH", f"jobs/{job.pk}", {"intervalSeconds": 1, "intervalHours": 0})
            answered = time.time()
            assert status == 200, status
            first = wait_for(lambda: _first_run(job.pk, "scheduled"), 30, interval=0.02)
            if first:
                started, scheduled = first[0].timestamp(), first[1].timestamp()
                edit.append(started - sent)
                # The part of the wait the new schedule itself asks for (its first fire time may
                # come after the edit was saved); the rest is the edit reaching the scheduler.
                wait.append(max(0.0, scheduled - answered))
                heard.append(started - sent - wait[-1])
            # A manual run through the API: the same path from web process to scheduler, no interval.
            job_delete(ScheduledJob.objects.get(pk=job.pk))
            time.sleep(1.5)
            job = job_create(
                name=f"propagation-trigger-{attempt}",
                task_function_id=function.pk,
                job_type_id=JobType.INTERVAL,
                interval_hours=1,
            )
            time.sleep(2.0)
            sent = time.time()
            status, _ = _api(port, token, "POST", f"jobs/{job.pk}/action", {"action": "trigger"})
            assert status == 202, status
            first = wait_for(lambda: _first_run(job.pk, "manual"), 30, interval=0.02)
            if first:
                trigger.append(first[0].timestamp() - sent)
            job_delete(ScheduledJob.objects.get(pk=job.pk))
    finally:
        stop_all([*procs, server])
    return {"edit": edit, "schedule_wait": wait, "propagation": heard, "trigger": trigger}


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _first_run(job_id: int, trigger: str):
    return data.sql(
        "SELECT started_at, scheduled_time FROM scheduler_jobexecution WHERE job_id = %s AND trigger = %s "
        "AND started_at IS NOT NULL ORDER BY started_at LIMIT 1",
        [job_id, trigger],
        fetch="one",
    )

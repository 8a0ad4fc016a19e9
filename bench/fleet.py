"""Part 6 of `make bench`: the operator's pages on a fleet-sized database, beside a plain `.values()`
view of the same rows, and the retention rate.

The fleet (default 1,000,000 jobs and 50,000,000 executions over 30 days) is generated in SQL on a
database of its own (BENCH_FLEET_DATABASE, default fleet_bench), migrated first, and dropped at the
end unless --fleet-keep. Pages are served by gunicorn with the production settings (plus the
baselines' URLs: bench/fleet_settings.py) and fetched one at a time: a few to warm up, then
--fleet-requests timed ones each, median and p95. Retention runs last (it deletes the oldest day).
"""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psycopg

from bench import fleet_data
from bench.harness import MANAGE, VENV_BIN, Proc, percentile, product_env, server_url, wait_for

WARM_UP = 3
PORT = 8766
METRICS_TOKEN = "fleet-benchmark-metrics-token-0123456789abcdef"


def database_name() -> str:
    return os.environ.get("BENCH_FLEET_DATABASE", "fleet_bench")


def database_url() -> str:
    return f"{server_url().rstrip('/')}/{database_name()}"


def _admin_connection() -> psycopg.Connection:
    return psycopg.connect(f"{server_url().rstrip('/')}/postgres", autocommit=True)


def disk_check(fleet: fleet_data.Fleet) -> tuple[str, int, int]:
    """(data directory, bytes free there, bytes the fleet needs); exits when there is not enough."""
    with _admin_connection() as conn:
        data_directory = conn.execute("SHOW data_directory").fetchone()[0]
    try:
        free = shutil.disk_usage(data_directory).free
    except OSError:  # the server's files are not visible from here: check this checkout's disk
        data_directory = str(MANAGE.parent)
        free = shutil.disk_usage(data_directory).free
    needed = fleet_data.disk_needed(fleet)
    if free < needed:
        sys.exit(
            f"The fleet needs about {needed / 1e9:.0f} GB free at {data_directory}; {free / 1e9:.0f} GB are. "
            f"Use a smaller fleet (--fleet-executions) or free some space."
        )
    return data_directory, free, needed


def database_recreate() -> None:
    name = database_name()
    if not name.startswith("fleet_"):
        raise SystemExit(f"Refusing to drop {name!r}: the fleet database's name must start with 'fleet_'.")
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def database_drop() -> None:
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database_name()}" WITH (FORCE)')


def _env(**extra) -> dict:
    return product_env(DATABASE_URL=database_url(), SCHEDULER_METRICS_TOKEN=METRICS_TOKEN, **extra)


def _manage(*args: str, timeout: float = 3600) -> str:
    result = subprocess.run(
        [sys.executable, str(MANAGE), *args], env=_env(), capture_output=True, text=True, timeout=timeout
    )
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def generate(fleet: fleet_data.Fleet, progress) -> dict:
    """Migrate the fleet database and fill it; returns the ids the pages use."""
    database_recreate()
    progress(f"fleet: migrating {database_name()}")
    _manage("migrate", "--noinput", "-v", "0")
    with psycopg.connect(database_url()) as conn:
        conn.execute("SET session_replication_role = replica")  # no triggers, no FK checks: see fleet_data
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SET max_parallel_maintenance_workers = 0")  # one core: the machine is shared
        noop = conn.execute("SELECT id FROM scheduler_taskfunction WHERE name = 'tasks.functions.noop'").fetchone()[0]
        started = time.monotonic()
        first, last = fleet_data.jobs_insert(conn, fleet, noop)
        conn.commit()
        progress(f"fleet: {fleet.jobs:,} jobs ({time.monotonic() - started:.0f} s)")
        indexes = fleet_data.secondary_indexes(conn, fleet_data.EXECUTIONS)
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.commit()
        fleet_data.executions_insert(conn, fleet, first, progress)
        for name, definition in indexes:
            started = time.monotonic()
            conn.execute(definition)
            conn.commit()
            progress(f"fleet: index {name} ({time.monotonic() - started:.0f} s)")
        conn.execute(
            "INSERT INTO scheduler_schedulerinstance (instance_id, hostname, pid, started_at, last_heartbeat) "
            "SELECT 'fleet-sched-' || k, 'fleet-host-' || k, 1000 + k, now(), now() + interval '1 day' "
            "FROM generate_series(0, 2) AS k"
        )
        conn.commit()
        conn.autocommit = True
        started = time.monotonic()
        conn.execute("VACUUM ANALYZE scheduler_jobexecution")
        conn.execute("VACUUM ANALYZE scheduler_scheduledjob")
        progress(f"fleet: VACUUM ANALYZE ({time.monotonic() - started:.0f} s)")
    started = time.monotonic()
    _manage("shell", "-c", "from scheduler.backends import backend; backend().summaries_rebuild()")
    with psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute("ANALYZE scheduler_executionsummary")
        conn.execute("ANALYZE scheduler_jobtally")
    progress(f"fleet: summaries rebuilt ({time.monotonic() - started:.0f} s)")
    return fleet_ids(fleet)


def fleet_ids(fleet: fleet_data.Fleet) -> dict:
    """The ids the pages use, and the sizes of what was generated."""
    with psycopg.connect(database_url()) as conn:
        first = conn.execute(f"SELECT min(id) FROM {fleet_data.JOBS} WHERE name LIKE 'fleet-%%'").fetchone()[0]
        newest = conn.execute(f"SELECT max(id) FROM {fleet_data.EXECUTIONS}").fetchone()[0]
        sizes = conn.execute(
            "SELECT pg_total_relation_size('scheduler_jobexecution'), pg_relation_size('scheduler_jobexecution'), "
            "pg_total_relation_size('scheduler_scheduledjob'), pg_database_size(current_database())"
        ).fetchone()
    return {
        "heavy_job": first,  # every hundredth run is one of the heavy jobs: the deepest job page
        "typical_job": first + fleet_data.HEAVY_JOBS + 123,
        "execution": newest - 1000,
        "search": f"fleet-{fleet.jobs // 2:07d}",
        "execution_bytes": sizes[0],
        "execution_heap_bytes": sizes[1],
        "job_bytes": sizes[2],
        "database_bytes": sizes[3],
    }


def database_exists() -> bool:
    with _admin_connection() as conn:
        return bool(conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database_name()]).fetchone())


def _credentials() -> tuple[str, str]:
    """(session cookie, API token) of a superuser, made the way a login makes them."""
    code = (
        "from django.contrib.auth import get_user_model; from django.test import Client; "
        "from rest_framework.authtoken.models import Token; "
        "u, _ = get_user_model().objects.get_or_create(username='fleet', defaults={'is_superuser': True, "
        "'is_staff': True}); c = Client(); c.force_login(u); "
        "print(c.cookies['sessionid'].value, Token.objects.get_or_create(user=u)[0].key)"
    )
    session, token = _manage("shell", "-c", code).split()[-2:]
    return session, token


def pages(ids: dict) -> list[tuple[str, str, str, str]]:
    """(figure, URL, how it authenticates, baseline) of every page measured."""
    heavy, typical, execution = ids["heavy_job"], ids["typical_job"], ids["execution"]
    return [
        ("Dashboard /scheduler/", "/scheduler/", "session", "dashboard"),
        ("Dashboard refresh (the page's 5 s fetch)", "/scheduler/", "refresh", "dashboard"),
        ("Dashboard, failures only", "/scheduler/?failures=1", "session", "dashboard-failures"),
        ("Dashboard, jobs page 100", "/scheduler/?page=100", "session", "dashboard-deep"),
        ("Job page (about 50 runs)", f"/scheduler/jobs/{typical}/", "session", f"job?job={typical}"),
        ("Job page (heavy job: 1/1000 of all runs)", f"/scheduler/jobs/{heavy}/", "session", f"job?job={heavy}"),
        (
            "Job page, heavy job, failed only",
            f"/scheduler/jobs/{heavy}/?status=failed",
            "session",
            f"job-failed?job={heavy}",
        ),
        (
            "Job page, heavy job, history page 1000",
            f"/scheduler/jobs/{heavy}/?page=1000",
            "session",
            f"job-deep?job={heavy}",
        ),
        ("Admin executions", "/admin/scheduler/jobexecution/", "session", "executions"),
        (
            "Admin executions, status failed",
            "/admin/scheduler/jobexecution/?status__exact=failed",
            "session",
            "executions-failed",
        ),
        (
            "Admin executions of one job",
            f"/admin/scheduler/jobexecution/?job={heavy}",
            "session",
            f"executions-of-job?job={heavy}",
        ),
        ("Admin executions, page 1000", "/admin/scheduler/jobexecution/?p=1000", "session", "executions-deep"),
        (
            "Admin execution page",
            f"/admin/scheduler/jobexecution/{execution}/change/",
            "session",
            f"execution?execution={execution}",
        ),
        ("Admin jobs", "/admin/scheduler/scheduledjob/", "session", "jobs"),
        (
            "Admin jobs, search by name",
            f"/admin/scheduler/scheduledjob/?q={ids['search']}",
            "session",
            f"jobs-search?q={ids['search']}",
        ),
        ("Admin job page", f"/admin/scheduler/scheduledjob/{typical}/change/", "session", f"job-change?job={typical}"),
        ("API /status", "/api/v1/scheduler/status", "token", "status"),
        ("API /jobs", "/api/v1/scheduler/jobs", "token", "api-jobs"),
        ("API /jobs?ordering=nextRunTime", "/api/v1/scheduler/jobs?ordering=nextRunTime", "token", "api-jobs-next"),
        ("API /jobs/{id}", f"/api/v1/scheduler/jobs/{typical}", "token", f"api-job?job={typical}"),
        (
            "API /jobs/{id}/history (heavy job)",
            f"/api/v1/scheduler/jobs/{heavy}/history",
            "token",
            f"api-history?job={heavy}",
        ),
        (
            "API history, heavy job, status=failed",
            f"/api/v1/scheduler/jobs/{heavy}/history?status=failed",
            "token",
            f"api-history-failed?job={heavy}",
        ),
        ("/metrics", "/metrics", "metrics", "metrics"),
    ]


def _get(url: str, headers: dict) -> tuple[float, int, int]:
    request = urllib.request.Request(f"http://127.0.0.1:{PORT}{url}", headers=headers)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        body, status = error.read(), error.code
    return time.perf_counter() - started, status, len(body)


def _healthy() -> bool:
    try:
        return _get("/healthz", {})[1] == 200
    except OSError:
        return False


def _timed(url: str, headers: dict, requests: int) -> dict:
    for _ in range(WARM_UP):
        _get(url, headers)
    times, statuses, size = [], set(), 0
    for _ in range(requests):
        seconds, status, size = _get(url, headers)
        times.append(seconds * 1000)
        statuses.add(status)
    return {
        "median": percentile(times, 50),
        "p95": percentile(times, 95),
        "max": max(times),
        "statuses": sorted(statuses),
        "bytes": size,
    }


def measure_pages(ids: dict, requests: int, progress) -> list[dict]:
    session, token = _credentials()
    auth = {
        "session": {"Cookie": f"sessionid={session}"},
        "refresh": {"Cookie": f"sessionid={session}", "X-Requested-With": "fetch"},
        "token": {"Authorization": f"Token {token}"},
        "metrics": {"Authorization": f"Bearer {METRICS_TOKEN}"},
    }
    server = Proc(
        [
            str(VENV_BIN / "gunicorn"),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{PORT}",
            "--workers",
            "2",
            "--timeout",
            "300",
            "--log-level",
            "warning",
        ],
        env=_env(DJANGO_SETTINGS_MODULE="bench.fleet_settings"),
        name="fleet-gunicorn",
    )
    results = []
    try:
        wait_for(lambda: not server.alive() or _healthy(), 60, interval=0.3)
        if not server.alive() or not _healthy():
            raise RuntimeError(f"gunicorn stopped; see {server.log_path}:\n{server.log()[-3000:]}")
        unauthorised = _get("/metrics", {})[1]
        for figure, url, how, baseline in pages(ids):
            page = _timed(url, auth[how], requests)
            base = _timed(f"/bench-baseline/{baseline}", auth["session"], requests)
            results.append({"figure": figure, "url": url, "page": page, "baseline": base})
            progress(
                f"fleet: {figure}: median {page['median']:.0f} ms, p95 {page['p95']:.0f} ms "
                f"(baseline {base['median']:.0f} / {base['p95']:.0f} ms), HTTP {page['statuses']}"
            )
        results.append({"figure": "/metrics without the token", "unauthorised_status": unauthorised})
    finally:
        server.stop()
    return results


def measure_retention(fleet: fleet_data.Fleet, progress) -> dict:
    """`manage.py cleanup_executions --older-than <days - 1>` (production settings): the oldest day
    of the history, and the runs of the jobs with a history limit past their newest 20."""
    with psycopg.connect(database_url()) as conn:
        before = conn.execute("SELECT count(*) FROM scheduler_jobexecution").fetchone()[0]
    started = time.monotonic()
    output = _manage("cleanup_executions", "--older-than", str(fleet.days - 1))
    seconds = time.monotonic() - started
    with psycopg.connect(database_url()) as conn:
        after = conn.execute("SELECT count(*) FROM scheduler_jobexecution").fetchone()[0]
        unfinished = conn.execute(
            "SELECT count(*) FROM scheduler_jobexecution WHERE status IN ('pending', 'running')"
        ).fetchone()[0]
    deleted = before - after
    progress(f"fleet: retention deleted {deleted:,} rows in {seconds:.1f} s ({deleted / seconds:,.0f} rows/s)")
    return {
        "deleted": deleted,
        "seconds": seconds,
        "rate": deleted / seconds if seconds else None,
        "needed_rate": fleet.per_day / 86400,
        "unfinished_left": unfinished,
        "output": output.strip(),
    }


def run(fleet: fleet_data.Fleet, *, requests: int, keep: bool, reuse: bool = False, progress) -> dict:
    """Generate the fleet and measure it; with `reuse`, measure the pages again on a fleet an
    earlier run kept (migrated to this checkout first), and leave retention out: it deleted the
    oldest day already."""
    started = time.monotonic()
    if reuse and database_exists():
        progress(f"fleet: reusing {database_name()} (migrating it)")
        _manage("migrate", "--noinput", "-v", "0")
        ids = fleet_ids(fleet)
    else:
        data_directory, free, needed = disk_check(fleet)
        progress(
            f"fleet: {fleet.jobs:,} jobs, {fleet.executions:,} executions; {free / 1e9:.0f} GB free at "
            f"{data_directory}, about {needed / 2e9:.0f} GB needed"
        )
        ids = generate(fleet, progress)
        reuse = False
    generated = time.monotonic() - started
    try:
        results = measure_pages(ids, requests, progress)
        retention = None if reuse else measure_retention(fleet, progress)
    finally:
        if not keep:
            database_drop()
    return {
        "fleet": {"jobs": fleet.jobs, "executions": fleet.executions, "days": fleet.days},
        "generation_seconds": generated,
        "reused": reuse,
        "ids": ids,
        "pages": results,
        "retention": retention,
        "requests": requests,
    }


def write_json(result: dict, path) -> None:
    """Every figure of the part, for a closer look than the table gives."""
    with open(path, "w") as handle:
        json.dump(result, handle, indent=2, default=str)

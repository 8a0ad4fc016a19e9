"""Bulk SQL for the benchmark's jobs and periodic tasks, and the reads that score the runs."""

from datetime import datetime

from django.db import connection, transaction

from bench.harness import percentile
from scheduler.backends.postgresql import NOTIFY_CHANNEL  # wakes every scheduler process

NOOP = "tasks.functions.noop"

_JOB_COLUMNS = (
    "name, description, interval_seconds, cron_expression, timezone, args, kwargs, priority, "
    "max_instances, misfire_grace_time, coalesce, is_enabled, is_paused, pause_reason, is_active, "
    "next_run_time, created_at, updated_at, job_type_id, task_function_id"
)


def sql(statement: str, params=None, *, fetch: str | None = None):
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])
        if fetch == "one":
            return cursor.fetchone()
        if fetch == "all":
            return cursor.fetchall()
    return None


def product_reset() -> None:
    """Empty the scheduler's tables (jobs, executions, leases, instances, and the summaries of
    them, which TRUNCATE's row triggers never see) between measurements."""
    sql(
        "TRUNCATE scheduler_jobexecution, scheduler_scheduledjoblock, scheduler_scheduledjob, "
        "scheduler_schedulerinstance, scheduler_executionsummary, scheduler_jobtally RESTART IDENTITY CASCADE"
    )


def noop_function_id() -> int:
    return sql("SELECT id FROM scheduler_taskfunction WHERE name = %s", [NOOP], fetch="one")[0]


def announce() -> None:
    """What the job services send after commit; bulk SQL bypasses them, so the benchmark sends it."""
    sql("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, '{"job": null, "execution": null}'])


def _jobs_load(statement: str, params: dict) -> None:
    """Run one INSERT of jobs with the triggers off, then recount the summaries, analyse, announce.

    The job tally's row trigger updates one tally row per inserted job, so a single INSERT of n jobs
    costs O(n^2) (20,000 jobs 7 s, 40,000 33 s); without it 250,000 take 10 s, linearly. The
    foreign keys the role also skips are right by construction; the recount, as after any bulk
    load (fleet_data does the same), runs while no scheduler has anything to record."""
    from scheduler.backends import backend

    with transaction.atomic():
        sql("SET LOCAL session_replication_role = replica")
        sql(statement, params)
    backend().summaries_rebuild()
    sql("ANALYZE scheduler_scheduledjob")
    announce()


def interval_jobs_insert(prefix: str, count: int, *, seconds: int, first_run: datetime, spread: float = 0.0) -> None:
    """`count` noop interval jobs; job k first fires at first_run + k * spread / count seconds."""
    _jobs_load(
        f"INSERT INTO scheduler_scheduledjob ({_JOB_COLUMNS}) "
        "SELECT %(prefix)s || i, '', %(seconds)s, NULL, 'UTC', '[]', '{}', 0, 1, 60, true, true, "
        "false, '', true, %(first)s + make_interval(secs => i * %(spread)s / %(count)s), now(), now(), "
        "1, %(function)s FROM generate_series(0, %(count)s - 1) AS i",
        {
            "prefix": prefix,
            "count": count,
            "seconds": seconds,
            "first": first_run,
            "spread": spread,
            "function": noop_function_id(),
        },
    )


def cron_jobs_insert(prefix: str, count: int) -> None:
    """`count` noop cron jobs spread over the hour: job i runs at minute i % 60 of every hour."""
    _jobs_load(
        f"INSERT INTO scheduler_scheduledjob ({_JOB_COLUMNS}) "
        "SELECT %(prefix)s || i, '', NULL, (i %% 60) || ' * * * *', 'UTC', '[]', '{}', 0, 1, 60, true, "
        "true, false, '', true, "
        "  CASE WHEN date_trunc('hour', now()) + make_interval(mins => i %% 60) > now() "
        "       THEN date_trunc('hour', now()) + make_interval(mins => i %% 60) "
        "       ELSE date_trunc('hour', now()) + make_interval(mins => i %% 60) + interval '1 hour' END, "
        "now(), now(), 2, %(function)s FROM generate_series(0, %(count)s - 1) AS i",
        {"prefix": prefix, "count": count, "function": noop_function_id()},
    )


def job_ids(prefix: str) -> tuple[int, int]:
    """(min id, max id) of the jobs whose name starts with `prefix` (inserted in one statement)."""
    return sql("SELECT min(id), max(id) FROM scheduler_scheduledjob WHERE name LIKE %s", [prefix + "%"], fetch="one")


def status_counts(id_range) -> dict:
    rows = sql(
        "SELECT status, count(*) FROM scheduler_jobexecution WHERE job_id BETWEEN %s AND %s GROUP BY status",
        list(id_range),
        fetch="all",
    )
    return dict(rows)


def success_count(id_range) -> int:
    return sql(
        "SELECT count(*) FROM scheduler_jobexecution WHERE status = 'success' AND job_id BETWEEN %s AND %s",
        list(id_range),
        fetch="one",
    )[0]


def runs_between(id_range, start: datetime, end: datetime):
    """(status, lag in ms, scheduled_time) of the scheduled runs due in [start, end) of these jobs."""
    return sql(
        "SELECT status, EXTRACT(EPOCH FROM started_at - scheduled_time) * 1000, scheduled_time "
        "FROM scheduler_jobexecution WHERE trigger = 'scheduled' AND job_id BETWEEN %s AND %s "
        "AND scheduled_time >= %s AND scheduled_time < %s",
        [*id_range, start, end],
        fetch="all",
    )


def runs_started_count(id_range, start: datetime, end: datetime) -> int:
    """How many runs of these jobs started in [start, end): the runs a CPU window paid for."""
    return sql(
        "SELECT count(*) FROM scheduler_jobexecution WHERE job_id BETWEEN %s AND %s "
        "AND started_at >= %s AND started_at < %s",
        [*id_range, start, end],
        fetch="one",
    )[0]


def lag_stats(lags_ms) -> dict:
    lags = [float(v) for v in lags_ms if v is not None]
    return {
        "p50": percentile(lags, 50),
        "p99": percentile(lags, 99),
        "max": max(lags) if lags else None,
    }


def cron_jobs_due_at(prefix: str, minutes) -> int:
    """How many of the cron jobs fire at these minutes of the hour."""
    return sql(
        "SELECT count(*) FROM scheduler_scheduledjob WHERE name LIKE %s AND cron_expression = ANY(%s)",
        [prefix + "%", [f"{m} * * * *" for m in minutes]],
        fetch="one",
    )[0]


# --- django-celery-beat ------------------------------------------------------------------------------


def beat_reset() -> None:
    sql(
        "TRUNCATE django_celery_beat_periodictask, django_celery_beat_periodictasks, "
        "django_celery_beat_crontabschedule, django_celery_beat_intervalschedule RESTART IDENTITY CASCADE"
    )


def beat_changed() -> None:
    """PeriodicTasks.update_changed(): what its model signals do; bulk SQL bypasses them."""
    sql(
        "INSERT INTO django_celery_beat_periodictasks (ident, last_update) VALUES (1, now()) "
        "ON CONFLICT (ident) DO UPDATE SET last_update = EXCLUDED.last_update"
    )


def beat_interval_schedule(seconds: int) -> int:
    return sql(
        "INSERT INTO django_celery_beat_intervalschedule (every, period) VALUES (%s, 'seconds') RETURNING id",
        [seconds],
        fetch="one",
    )[0]


_TASK_COLUMNS = (
    "name, task, args, kwargs, enabled, last_run_at, total_run_count, date_changed, description, "
    "interval_id, crontab_id, one_off, headers"
)


def beat_interval_tasks_insert(
    prefix: str, count: int, *, seconds: int, last_run_at: datetime, spread: float = 0.0
) -> None:
    """`count` interval PeriodicTasks; task k last ran at last_run_at + k * spread / count seconds
    (so its first send is `seconds` after that, as interval_jobs_insert spreads first fire times)."""
    interval_id = beat_interval_schedule(seconds)
    sql(
        f"INSERT INTO django_celery_beat_periodictask ({_TASK_COLUMNS}) "
        "SELECT %(prefix)s || i, 'bench.noop', '[]', '{}', true, "
        "%(last)s + make_interval(secs => i * %(spread)s / %(count)s), 0, now(), '', %(interval)s, "
        "NULL, false, '{}' FROM generate_series(0, %(count)s - 1) AS i",
        {"prefix": prefix, "count": count, "last": last_run_at, "spread": spread, "interval": interval_id},
    )
    sql("ANALYZE django_celery_beat_periodictask")
    beat_changed()


def beat_cron_tasks_insert(prefix: str, count: int) -> None:
    """`count` crontab PeriodicTasks: task i at minute i % 60 of every hour, as for our jobs."""
    sql(
        "INSERT INTO django_celery_beat_crontabschedule "
        "(minute, hour, day_of_week, day_of_month, month_of_year, timezone) "
        "SELECT m::text, '*', '*', '*', '*', 'UTC' FROM generate_series(0, 59) AS m"
    )
    sql(
        f"INSERT INTO django_celery_beat_periodictask ({_TASK_COLUMNS}) "
        "SELECT %(prefix)s || i, 'bench.noop', '[]', '{}', true, NULL, 0, now(), '', NULL, "
        "(SELECT id FROM django_celery_beat_crontabschedule WHERE minute = (i %% 60)::text), false, '{}' "
        "FROM generate_series(0, %(count)s - 1) AS i",
        {"prefix": prefix, "count": count},
    )
    sql("ANALYZE django_celery_beat_periodictask")
    beat_changed()

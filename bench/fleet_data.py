"""The fleet benchmark's data: a million jobs and their history, generated in SQL (generate_series),
never through the API, on a database of its own.

Rows are inserted in time order, as a live fleet writes them (ids grow with created_at), with the
secondary indexes dropped during the load and built afterwards, and the triggers off
(session_replication_role = replica: the foreign keys are right by construction, and the run
summary is rebuilt in one pass at the end, as the migration that introduced it does).
"""

import time
from dataclasses import dataclass

import psycopg

EXECUTIONS = "scheduler_jobexecution"
JOBS = "scheduler_scheduledjob"
HEAVY_JOBS = 10  # jobs that each get 1/HEAVY_JOBS of every hundredth run: the deep job pages
CHUNK = 2_000_000  # executions per INSERT statement (progress, and no giant transaction)
# Bytes per execution row with its share of every index, measured on a generated fleet (heap
# about 60%); the disk check asks for twice that, for the WAL and the index builds' sort files.
BYTES_PER_EXECUTION = 330


@dataclass(frozen=True)
class Fleet:
    jobs: int
    executions: int
    days: int = 30  # the history spans the default retention period

    @property
    def per_day(self) -> float:
        return self.executions / self.days


def disk_needed(fleet: Fleet) -> int:
    return 2 * BYTES_PER_EXECUTION * fleet.executions


def jobs_insert(conn: psycopg.Connection, fleet: Fleet, noop_id: int) -> tuple[int, int]:
    """The fleet's jobs; returns (first id, last id). Job k: cron, hourly for one in ten and daily
    for the rest (minute k % 60), 2% paused, 2% disabled, 1% deleted, 1% with a history limit of
    20; the first HEAVY_JOBS are every-minute jobs with most of the history per job."""
    conn.execute(
        f"""
        INSERT INTO {JOBS} (name, description, task_function_id, job_type_id, cron_expression, timezone,
            args, kwargs, priority, max_instances, misfire_grace_time, coalesce, history_limit, is_enabled,
            is_paused, pause_reason, is_active, next_run_time, last_run_time, created_at, updated_at)
        SELECT 'fleet-' || lpad(k::text, 7, '0'), '', %(noop)s, 2,
               CASE WHEN k <= %(heavy)s THEN '* * * * *'
                    WHEN k %% 10 = 0 THEN (k %% 60) || ' * * * *'
                    ELSE (k %% 60) || ' ' || (k / 60 %% 24) || ' * * *' END,
               'UTC', '[]', '{{}}', 0, 1, 60, true,
               CASE WHEN k %% 100 = 3 THEN 20 END,
               k %% 50 <> 1, k %% 50 = 2, CASE WHEN k %% 50 = 2 THEN 'fleet benchmark' ELSE '' END,
               k %% 100 <> 5,
               now() + make_interval(secs => (k * 7919) %% 86400),
               now() - make_interval(secs => (k * 104729) %% 86400),
               now() - interval '60 days', now() - interval '60 days'
        FROM generate_series(1::bigint, %(jobs)s) AS k
        """,
        {"noop": noop_id, "heavy": HEAVY_JOBS, "jobs": fleet.jobs},
    )
    return conn.execute(f"SELECT min(id), max(id) FROM {JOBS} WHERE name LIKE 'fleet-%%'").fetchone()


def executions_insert(conn: psycopg.Connection, fleet: Fleet, first_job_id: int, progress) -> None:
    """`fleet.executions` runs over `fleet.days` days up to now, in time order. Every hundredth run
    belongs to one of the HEAVY_JOBS, the others go round the remaining jobs. Outcomes: 2% failed
    (with an error and a traceback), 0.5% missed, 0.2% skipped, the rest success; 1% manual; the
    newest 50 are still running. Durations 0-5 s with one run in a thousand at 10 minutes; fire lag
    0-250 ms."""
    span_us = fleet.days * 86400 * 1_000_000
    step_us = span_us / fleet.executions
    others = fleet.jobs - HEAVY_JOBS
    for lo in range(0, fleet.executions, CHUNK):
        hi = min(lo + CHUNK, fleet.executions)
        started = time.monotonic()
        conn.execute(
            f"""
            INSERT INTO {EXECUTIONS} (job_id, status, trigger, scheduled_time, created_at, started_at,
                finished_at, duration_ms, result, error_message, traceback, instance_id, hostname,
                celery_task_id)
            SELECT job_id, status, trig, t, t, started,
                   CASE WHEN status = 'running' THEN NULL
                        WHEN started IS NULL THEN t + interval '60 seconds'
                        ELSE started + make_interval(secs => dur / 1000.0) END,
                   CASE WHEN started IS NOT NULL AND status <> 'running' THEN dur END,
                   NULL,
                   CASE WHEN status = 'failed' THEN 'RuntimeError: upstream returned 502'
                        WHEN status = 'missed' THEN 'missed: started 61 s late, over misfire_grace_time (60 s)'
                        WHEN status = 'skipped' THEN 'skipped: max_instances (1) reached'
                        ELSE '' END,
                   CASE WHEN status = 'failed' THEN
                        E'Traceback (most recent call last):\\n  File "tasks/functions.py", line 42, in fetch\\n'
                        || E'    raise RuntimeError("upstream returned 502")\\nRuntimeError: upstream returned 502'
                        ELSE '' END,
                   'fleet-sched-' || (r %% 3), CASE WHEN started IS NULL THEN '' ELSE 'fleet-host-' || (r %% 3) END,
                   ''
            FROM (
                SELECT r, t, job_id, trig, dur,
                       CASE WHEN r >= %(total)s - 50 THEN 'running'
                            WHEN h < 20 THEN 'failed' WHEN h < 25 THEN 'missed' WHEN h < 27 THEN 'skipped'
                            ELSE 'success' END AS status,
                       CASE WHEN h >= 20 AND h < 27 AND r < %(total)s - 50 THEN NULL
                            ELSE t + make_interval(secs => (r %% 250) / 1000.0) END AS started
                FROM (
                    SELECT r,
                           now() - make_interval(secs => (%(span)s - r * %(step)s) / 1e6) AS t,
                           %(first)s + CASE WHEN r %% 100 = 0 THEN (r / 100) %% %(heavy)s
                                            ELSE %(heavy)s + r %% %(others)s END AS job_id,
                           (r * 2654435761 %% 4294967296) * 1000 / 4294967296 AS h,
                           CASE WHEN (r * 2654435761 %% 4294967296) * 1000 / 4294967296 >= 990
                                THEN 'manual' ELSE 'scheduled' END AS trig,
                           CASE WHEN r %% 1000 = 7 THEN 600000 ELSE (r * 37) %% 5000 END AS dur
                    FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) AS r
                ) AS g
            ) AS runs
            """,
            {
                "total": fleet.executions,
                "span": span_us,
                "step": step_us,
                "first": first_job_id,
                "heavy": HEAVY_JOBS,
                "others": others,
                "lo": lo,
                "hi": hi,
            },
        )
        conn.commit()
        progress(
            f"fleet: executions {hi:,} of {fleet.executions:,} ({time.monotonic() - started:.0f} s for this chunk)"
        )


def secondary_indexes(conn: psycopg.Connection, table: str) -> list[tuple[str, str]]:
    """(name, CREATE statement) of every index of `table` but its primary key."""
    return conn.execute(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        JOIN pg_class c ON c.relname = i.indexname
        JOIN pg_index x ON x.indexrelid = c.oid
        WHERE i.tablename = %s AND NOT x.indisprimary
        """,
        [table],
    ).fetchall()

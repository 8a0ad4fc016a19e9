"""Prometheus collector that reads the scheduler's tables at scrape time, so every process's runs count.

Series are aggregates: one per outcome, state or bucket, never one per job (a million jobs would
be a million series, and Prometheus' advice is to keep label values bounded). The one per-job
family is bounded too: the SCHEDULER_METRICS_FAILING_JOBS jobs with the most failed runs in the
window, labelled job_id and job_name (not `job`, which Prometheus sets to the scrape job's name).

Run figures cover the last METRICS_WINDOW and are gauges (and gauge histograms), not counters:
history cleanup and per-job caps delete rows, and a counter computed from a shrinking table would
drop, which Prometheus reads as a reset. They come from the per-minute run summary the database
keeps (models.ExecutionSummary), so a scrape reads about the same rows at any fleet size or
history length: the summary's last hour, the job tally, the runs in progress, the failed runs of
the last hour.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Min, Q, Sum
from prometheus_client.core import CollectorRegistry, GaugeHistogramMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from scheduler.enums import FINISHED_STATUSES, RAN_STATUSES, ExecutionStatus, JobState
from scheduler.models import SUMMARY_BUCKETS, ExecutionSummary, JobExecution, JobLease, JobTally, SchedulerInstance
from scheduler.querysets import JOB_STATE_FILTERS
from scheduler.selectors import database_now

logger = logging.getLogger(__name__)

METRICS_WINDOW = timedelta(hours=1)
BUCKET_FIELDS = [name for name, _ in SUMMARY_BUCKETS]
S = ExecutionStatus
# The job states a job series reports (deleted jobs are not counted).
REPORTED_JOB_STATES = (JobState.SCHEDULED, JobState.PAUSED, JobState.DISABLED)


class SchedulerCollector(Collector):
    def describe(self):
        # Nothing to describe up front: registering must not query the database.
        return []

    def collect(self):
        try:
            families = list(_collect(database_now()))
        except DatabaseError:
            logger.exception("Metrics scrape: the database query failed")
            families = []
            database_up = 0
        else:
            database_up = 1
        up = GaugeMetricFamily("scheduler_database_up", "1 when the metrics could be read from the database.")
        up.add_metric([], database_up)
        yield up
        yield from families


def _collect(now):
    since = now - METRICS_WINDOW
    window = f"{int(METRICS_WINDOW.total_seconds())} s"

    alive_instances = list(SchedulerInstance.objects.alive(now).values_list("instance_id", "clock_offset"))
    alive = GaugeMetricFamily("scheduler_instances_alive", "runscheduler processes not stopped and heartbeating.")
    alive.add_metric([], len(alive_instances))
    yield alive
    offsets = GaugeMetricFamily(
        "scheduler_instance_clock_offset_seconds",
        "The database's clock minus each live scheduler process's host clock (processes schedule by "
        "the database's; alert when the absolute value grows).",
        labels=["instance_id"],
    )
    for instance_id, offset in alive_instances:
        if offset is not None:
            offsets.add_metric([instance_id], offset)
    yield offsets

    leases = JobLease.objects.order_by().aggregate(
        live=Count("pk", filter=Q(expires_at__gt=now)), expired=Count("pk", filter=Q(expires_at__lte=now))
    )
    held = GaugeMetricFamily("scheduler_leases_held", "Live leases (max_instances slots held by running executions).")
    held.add_metric([], leases["live"])
    yield held
    expired = GaugeMetricFamily("scheduler_leases_expired", "Expired leases not yet reclaimed by a scheduler process.")
    expired.add_metric([], leases["expired"])
    yield expired

    jobs = JobTally.objects.aggregate(
        **{state.value: Sum("jobs", filter=JOB_STATE_FILTERS[state]) for state in REPORTED_JOB_STATES}
    )
    job_states = GaugeMetricFamily("scheduler_jobs", "Jobs (not deleted) by state.", labels=["state"])
    for state, count in jobs.items():
        job_states.add_metric([state], count or 0)
    yield job_states

    unfinished = (
        JobExecution.objects.unfinished()
        .order_by()
        .values("status")
        .annotate(count=Count("pk"), oldest=Min("created_at"))
    )
    in_progress = GaugeMetricFamily(
        "scheduler_executions_in_progress", "Executions pending or running now, of any age.", labels=["status"]
    )
    oldest_pending = 0.0
    counts = {S.PENDING.value: 0, S.RUNNING.value: 0}
    for row in unfinished:
        counts[row["status"]] = row["count"]
        if row["status"] == S.PENDING:
            oldest_pending = max(0.0, (now - row["oldest"]).total_seconds())
    for status, count in counts.items():
        in_progress.add_metric([status], count)
    yield in_progress
    pending_age = GaugeMetricFamily(
        "scheduler_oldest_pending_execution_age_seconds",
        "Age of the oldest execution still waiting to start (0 when none): runs stuck unclaimed.",
    )
    pending_age.add_metric([], oldest_pending)
    yield pending_age

    totals = ExecutionSummary.objects.totals(since, BUCKET_FIELDS)
    runs = GaugeMetricFamily(
        "scheduler_runs",
        f"Runs that ended in the last {window}, by outcome (success, failed, skipped, missed).",
        labels=["status"],
    )
    for status in FINISHED_STATUSES:
        runs.add_metric([status], (totals.get(status) or {}).get("runs") or 0)
    yield runs
    started = GaugeMetricFamily("scheduler_runs_started", f"Runs that started in the last {window}.")
    started.add_metric([], (totals.get(S.RUNNING) or {}).get("runs") or 0)
    yield started

    ran = [totals[status] for status in RAN_STATUSES if status in totals]
    yield _histogram(
        "scheduler_run_duration_seconds",
        f"Run time of the successful and failed runs that ended in the last {window}.",
        ran,
    )
    starts = [totals[S.RUNNING]] if S.RUNNING in totals else []
    yield _histogram(
        "scheduler_fire_lag_seconds",
        f"Delay from fire time to start (started_at - scheduled_time) of the scheduled runs that started "
        f"in the last {window}.",
        starts,
    )
    worst = GaugeMetricFamily(
        "scheduler_fire_lag_max_seconds",
        f"Largest fire lag among the scheduled runs that started in the last {window} (0 when none).",
    )
    worst.add_metric([], max((row["max_ms"] or 0 for row in starts), default=0) / 1000)
    yield worst

    yield from _failing_jobs(since, window)


def _histogram(name: str, documentation: str, rows: list[dict]) -> GaugeHistogramMetricFamily:
    """A gauge histogram over summary totals (one per status), in seconds."""
    family = GaugeHistogramMetricFamily(name, documentation)
    buckets = [(_le(bound / 1000), sum(row[field] or 0 for row in rows)) for field, bound in SUMMARY_BUCKETS]
    family.add_metric(
        [],
        [*buckets, ("+Inf", sum(row["timed"] or 0 for row in rows))],
        gsum_value=sum(row["total_ms"] or 0 for row in rows) / 1000,
    )
    return family


def _failing_jobs(since, window):
    """The jobs with the most failed runs in the window (at most SCHEDULER_METRICS_FAILING_JOBS), and
    how many jobs failed at all: read from the window's failed runs (the status index), so a
    scrape costs what the failures cost, not what the fleet does."""
    failed = JobExecution.objects.filter(status=S.FAILED, created_at__gte=since).order_by()
    per_job = failed.values("job_id").annotate(failures=Count("pk"))
    failing = GaugeMetricFamily(
        "scheduler_jobs_failing", f"Jobs with at least one failed run created in the last {window}."
    )
    failing.add_metric([], per_job.count())
    yield failing
    top = GaugeMetricFamily(
        "scheduler_failing_job_runs",
        f"Failed runs created in the last {window} of the jobs that failed most (at most "
        f"{settings.SCHEDULER_METRICS_FAILING_JOBS} jobs, most failures first).",
        labels=["job_id", "job_name"],
    )
    limit = settings.SCHEDULER_METRICS_FAILING_JOBS
    if limit > 0:
        for row in per_job.values("job_id", "job__name", "failures").order_by("-failures", "job_id")[:limit]:
            top.add_metric([str(row["job_id"]), row["job__name"]], row["failures"])
    yield top


def _le(bound) -> str:
    return str(float(bound))


registry = CollectorRegistry(auto_describe=False)
registry.register(SchedulerCollector())

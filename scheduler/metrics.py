"""Prometheus collector that reads the scheduler's tables at scrape time, so every process's runs count.

Jobs are labelled job_id and job_name (not `job`, which Prometheus sets to the scrape job's
name). Run counts, durations and fire lag cover the executions created in the last METRICS_WINDOW and
are exposed as gauges (and gauge histograms), not counters: history cleanup and per-job caps
delete rows, and a counter computed from a shrinking table would drop, which Prometheus reads
as a reset and turns into a false burst in rate() and increase(). Every figure comes from a
handful of aggregate queries, so a scrape costs the same however long the history is.
"""

import logging
from datetime import timedelta

from django.db import DatabaseError
from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Min, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from prometheus_client.core import CollectorRegistry, GaugeHistogramMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from scheduler.enums import RAN_STATUSES, STARTED_STATUSES, ExecutionStatus, ExecutionTrigger, JobState
from scheduler.models import JobExecution, JobLease, ScheduledJob, SchedulerInstance
from scheduler.querysets import JOB_STATE_FILTERS
from scheduler.selectors import database_now

logger = logging.getLogger(__name__)

METRICS_WINDOW = timedelta(hours=1)
# Seconds. Durations span sub-second inline work to hour-long Celery tasks.
DURATION_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600)
# Seconds. A healthy scheduler starts runs well within a second of their fire time.
LAG_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300)
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
    recent = JobExecution.objects.created_since(since)

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

    jobs = (
        ScheduledJob.objects.active()
        .order_by()
        .aggregate(**{state.value: Count("pk", filter=JOB_STATE_FILTERS[state]) for state in REPORTED_JOB_STATES})
    )
    job_states = GaugeMetricFamily("scheduler_jobs", "Jobs (not deleted) by state.", labels=["state"])
    for state, count in jobs.items():
        job_states.add_metric([state], count)
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

    runs = GaugeMetricFamily(
        "scheduler_job_runs",
        f"Executions created in the last {window}, by job and current status "
        f"(success, failed, skipped, missed, pending, running).",
        labels=["job_id", "job_name", "status"],
    )
    for row in recent.values("job_id", "job__name", "status").annotate(count=Count("pk")):
        runs.add_metric([str(row["job_id"]), row["job__name"], row["status"]], row["count"])
    yield runs

    yield _duration_histogram(recent, window)
    yield from _lag_metrics(recent, window)
    yield from _last_outcome_metrics()


def _duration_histogram(recent, window):
    buckets = {f"le_{i}": Count("pk", filter=Q(duration_ms__lte=b * 1000)) for i, b in enumerate(DURATION_BUCKETS)}
    rows = (
        recent.filter(status__in=RAN_STATUSES, duration_ms__isnull=False)
        .values("job_id", "job__name")
        .annotate(count=Count("pk"), total_ms=Sum("duration_ms"), **buckets)
    )
    family = GaugeHistogramMetricFamily(
        "scheduler_job_run_duration_seconds",
        f"Run time of the successful and failed executions created in the last {window}, by job.",
        labels=["job_id", "job_name"],
    )
    for row in rows:
        family.add_metric(
            [str(row["job_id"]), row["job__name"]],
            [(_le(b), row[f"le_{i}"]) for i, b in enumerate(DURATION_BUCKETS)] + [("+Inf", row["count"])],
            gsum_value=(row["total_ms"] or 0) / 1000,
        )
    return family


def _lag_metrics(recent, window):
    # From the planned start: a jittered run meant to start later is not late by its jitter.
    lag = ExpressionWrapper(
        F("started_at") - Coalesce(F("planned_start"), F("scheduled_time")), output_field=DurationField()
    )
    buckets = {f"le_{i}": Count("pk", filter=Q(lag__lte=timedelta(seconds=b))) for i, b in enumerate(LAG_BUCKETS)}
    row = (
        recent.filter(status__in=STARTED_STATUSES, trigger=ExecutionTrigger.SCHEDULED, started_at__isnull=False)
        .annotate(lag=lag)
        .aggregate(count=Count("pk"), total=Sum("lag"), worst=Max("lag"), **buckets)
    )
    histogram = GaugeHistogramMetricFamily(
        "scheduler_fire_lag_seconds",
        f"Delay from planned start to start (started_at - scheduled_time, or - planned_start with jitter) of the "
        f"scheduled runs "
        f"created in the last {window}.",
    )
    histogram.add_metric(
        [],
        [(_le(b), row[f"le_{i}"]) for i, b in enumerate(LAG_BUCKETS)] + [("+Inf", row["count"])],
        gsum_value=_seconds(row["total"]),
    )
    yield histogram
    worst = GaugeMetricFamily(
        "scheduler_fire_lag_max_seconds",
        f"Largest fire lag among the scheduled runs created in the last {window} (0 when none).",
    )
    worst.add_metric([], _seconds(row["worst"]))
    yield worst


def _last_outcome_metrics():
    """Whether each job's latest finished run succeeded: the signal for "this job is failing"."""
    latest = JobExecution.objects.filter(job=OuterRef("pk"), status__in=RAN_STATUSES).order_by("-created_at", "-pk")
    rows = (
        ScheduledJob.objects.active()
        .order_by()
        .annotate(
            last_status=Subquery(latest.values("status")[:1]),
            last_finished=Subquery(latest.values("finished_at")[:1]),
        )
        .filter(last_status__isnull=False)
        .values("pk", "name", "last_status", "last_finished")
    )
    success = GaugeMetricFamily(
        "scheduler_job_last_run_success",
        "1 if the job's latest finished run succeeded, 0 if it failed (jobs that have run).",
        labels=["job_id", "job_name"],
    )
    finished = GaugeMetricFamily(
        "scheduler_job_last_run_finished_timestamp_seconds",
        "When the job's latest successful or failed run finished (Unix time).",
        labels=["job_id", "job_name"],
    )
    for row in rows:
        labels = [str(row["pk"]), row["name"]]
        success.add_metric(labels, 1 if row["last_status"] == S.SUCCESS else 0)
        if row["last_finished"] is not None:
            finished.add_metric(labels, row["last_finished"].timestamp())
    yield success
    yield finished


def _le(bound) -> str:
    return str(float(bound))


def _seconds(value) -> float:
    return value.total_seconds() if value is not None else 0.0


registry = CollectorRegistry(auto_describe=False)
registry.register(SchedulerCollector())

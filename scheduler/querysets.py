"""Querysets (used as managers) holding the reusable reads of the scheduler's tables."""

from datetime import UTC, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Count, Exists, F, Max, OuterRef, Q, Subquery, Sum, Window
from django.db.models.functions import Coalesce, Now, RowNumber, TruncHour, TruncSecond
from django.utils import timezone

from scheduler.enums import (
    FINISHED_STATUSES,
    UNFINISHED_STATUSES,
    DeliveryStatus,
    ExecutionStatus,
    ExecutionTrigger,
    JobState,
)

# Which jobs are in each state. ScheduledJob.state is the same rule for a row in hand, and the
# partial index the engine reads due jobs through has the SCHEDULED condition.
JOB_STATE_FILTERS = {
    JobState.SCHEDULED: Q(is_active=True, is_enabled=True, is_paused=False),
    JobState.PAUSED: Q(is_active=True, is_enabled=True, is_paused=True),
    JobState.DISABLED: Q(is_active=True, is_enabled=False),
    JobState.DELETED: Q(is_active=False),
}


# When a job's next fire time starts: its jitter-delayed start, else the fire time itself. The
# due index is on this expression, so jobs without jitter never need next_start_at written.
START_TIME = Coalesce(F("next_start_at"), F("next_run_time"))


def alive_window() -> timedelta:
    """Heartbeats older than three intervals mean the process is dead."""
    return timedelta(seconds=3 * settings.SCHEDULER_HEARTBEAT_INTERVAL)


def alive_cutoff(now=None):
    return (now or timezone.now()) - alive_window()


class TaskFunctionQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)


class JobQuerySet(models.QuerySet):
    def active(self):
        """Jobs that are not soft-deleted."""
        return self.filter(is_active=True)

    def in_state(self, state: JobState):
        return self.filter(JOB_STATE_FILTERS[state])

    def schedulable(self):
        """Jobs that can fire: the exact condition of the partial next_run_time index."""
        return self.in_state(JobState.SCHEDULED)

    def due(self, now=None, *, ahead_until=None):
        """Schedulable jobs whose next fire time's start has come, highest priority first.

        With `ahead_until`, also the jobs that start by then and hold no lease: a run claimed
        ahead of its time must find every slot free, as it would at its time (a job with a run
        in progress is left for the claim at its time, where its overlap policy decides)."""
        now = now or timezone.now()
        started = Q(start_time__lte=now)
        if ahead_until is not None and ahead_until > now:
            leases = self.model._meta.get_field("leases").related_model  # models imports us
            free = ~Exists(leases.objects.filter(job_id=OuterRef("pk")))
            # A range of its own (not "<= ahead_until"): an index scan of the look-ahead alone.
            started |= Q(start_time__gt=now, start_time__lte=ahead_until) & free
        return (
            self.schedulable().alias(start_time=START_TIME).filter(started).order_by("-priority", "next_run_time", "pk")
        )

    def crowd_start(self, after, until, *, size: int):
        """The first whole second in (after, until] in which at least `size` schedulable jobs start
        (a minute boundary of a large fleet), or None."""
        crowd = (
            self.schedulable()
            .alias(start_time=START_TIME)
            .filter(start_time__gt=after, start_time__lte=until)
            .annotate(second=TruncSecond(START_TIME, tzinfo=UTC))
            .values("second")
            .annotate(n=Count("pk"))
            .filter(n__gte=size)
            .order_by("second")
            .first()
        )
        return None if crowd is None else crowd["second"]

    def next_start(self):
        """The earliest start among schedulable jobs (None when none has a next run)."""
        return self.schedulable().aggregate(t=models.Min(START_TIME))["t"]

    def with_last_execution(self):
        """Annotate last_execution_status/_id without a query per row."""
        executions = self.model._meta.get_field("executions").related_model  # models imports us
        latest = executions.objects.filter(job=OuterRef("pk")).order_by("-created_at", "-pk")
        return self.annotate(
            last_execution_status=Subquery(latest.values("status")[:1]),
            last_execution_id=Subquery(latest.values("pk")[:1]),
        )


class ExecutionQuerySet(models.QuerySet):
    def unfinished(self):
        return self.filter(status__in=UNFINISHED_STATUSES)

    def finished(self):
        return self.exclude(status__in=UNFINISHED_STATUSES)

    def unclaimed(self, now=None):
        """Runs not yet picked up by any scheduler process: manual requests, released runs and
        retries; with `now`, only those due by then (a retry waits out its backoff)."""
        unclaimed = self.filter(status=ExecutionStatus.PENDING, instance_id="")
        if now is None:
            return unclaimed
        return unclaimed.filter(~Q(trigger=ExecutionTrigger.RETRY) | Q(scheduled_time__lte=now))

    def waiting(self):
        """Runs an overlap policy keeps until their job has a free slot."""
        return self.filter(status=ExecutionStatus.WAITING)

    def live_schedule(self):
        """Runs of the job's own schedule and requests (scheduled, manual, retry), not backfilled
        ones, which have max_instances slots of their own."""
        return self.exclude(trigger=ExecutionTrigger.BACKFILL)

    def newest_first(self):
        return self.order_by("-created_at", "-pk")

    def beyond_history_limit(self):
        """Finished executions of jobs with a history_limit that fall past that job's newest N."""
        ranked = (
            self.finished()
            .filter(job__history_limit__isnull=False)
            .annotate(
                newest_rank=Window(
                    RowNumber(),
                    partition_by=[F("job_id")],
                    order_by=[F("created_at").desc(), F("pk").desc()],
                ),
                history_keep=F("job__history_limit"),
            )
        )
        return ranked.filter(newest_rank__gt=F("history_keep"))

    def created_since(self, since):
        """Executions created at or after `since`, newest first: an index range on created_at that
        a LIMIT stops early, however many runs the window holds."""
        return self.filter(created_at__gte=since).newest_first()

    def in_progress_by_hour(self, since):
        """Rows of (hour, status, runs) of the runs still pending, waiting or running, by the hour
        they were created (UTC): the status index's few in-progress rows, whatever the history."""
        return (
            self.unfinished()
            .filter(created_at__gte=since)
            .annotate(hour=TruncHour("created_at", tzinfo=UTC))
            .values("hour", "status")
            .annotate(runs=Count("pk"))
            .order_by()
        )

    def in_progress_counts(self) -> dict[str, int]:
        """{status: count} of the pending and running executions (few, whatever the history)."""
        return dict(self.unfinished().order_by().values_list("status").annotate(count=Count("pk")))


def minute_of(moment):
    """The start of the minute holding `moment` (summary rows are per UTC minute)."""
    return moment.replace(second=0, microsecond=0)


class ExecutionSummaryQuerySet(models.QuerySet):
    """Reads of the per-minute run summary; each sums the shards of the minutes it covers."""

    def since(self, since):
        """The minutes from the one holding `since` on: a window of whole minutes."""
        return self.filter(minute__gte=minute_of(since))

    def ends(self):
        return self.filter(status__in=FINISHED_STATUSES)

    def starts(self):
        return self.filter(status=ExecutionStatus.RUNNING)

    def outcome_counts(self, since) -> dict[str, int]:
        """{outcome: runs} of the runs that ended since `since`."""
        return dict(self.since(since).ends().order_by().values_list("status").annotate(runs=Sum("runs")))

    def hourly(self, since):
        """Rows of (hour, status, runs, timed, total_ms, max_ms) since `since`; hours in UTC."""
        return (
            self.since(since)
            .annotate(hour=TruncHour("minute", tzinfo=UTC))
            .values("hour", "status")
            .annotate(runs=Sum("runs"), timed=Sum("timed"), total=Sum("total_ms"), longest=Max("max_ms"))
            .order_by("hour", "status")
        )

    def totals(self, since, bucket_fields) -> dict[str, dict]:
        """{status: {runs, timed, total_ms, max_ms, <bucket>: ...}} since `since`."""
        rows = (
            self.since(since)
            .order_by()
            .values("status")
            .annotate(
                runs_sum=Sum("runs"),
                timed_sum=Sum("timed"),
                total_sum=Sum("total_ms"),
                longest=Max("max_ms"),
                **{f"{name}_sum": Sum(name) for name in bucket_fields},
            )
        )
        return {
            row["status"]: {
                "runs": row["runs_sum"],
                "timed": row["timed_sum"],
                "total_ms": row["total_sum"],
                "max_ms": row["longest"],
                **{name: row[f"{name}_sum"] for name in bucket_fields},
            }
            for row in rows
        }


class JobTallyQuerySet(models.QuerySet):
    def jobs(self, condition=None) -> int:
        """How many jobs match `condition` (a Q on the state columns, e.g. a JOB_STATE_FILTERS value)."""
        rows = self.filter(condition) if condition is not None else self
        return rows.aggregate(total=Sum("jobs"))["total"] or 0


class LeaseQuerySet(models.QuerySet):
    def take(self, executions, *, instance_id: str, now, expires_at):
        """Insert a lease, held by `instance_id` from `now`, for each of these pending executions."""
        return self.bulk_create(
            self.model(
                job_id=e.job_id,
                execution_id=e.pk,
                locked_by=instance_id,
                locked_at=now,
                expires_at=expires_at,
                is_backfill=e.trigger == ExecutionTrigger.BACKFILL,
            )
            for e in executions
        )

    def of_executions(self, execution_ids):
        """The leases of these runs (a run holds at most one); deleting them frees the slots."""
        return self.filter(execution_id__in=list(execution_ids))

    def of_finished_runs(self):
        """Leases left behind by runs that have ended: they no longer hold a slot."""
        return self.exclude(execution__status__in=UNFINISHED_STATUSES)

    def live(self, now=None):
        return self.filter(expires_at__gt=now or timezone.now())

    def expired(self, now=None):
        return self.filter(expires_at__lte=now or timezone.now())


class InstanceQuerySet(models.QuerySet):
    def alive(self, now=None):
        """Running processes: not stopped and heard from within three heartbeats, by `now` or else
        by the database's own clock (heartbeats are written on it, whatever this host's says)."""
        cutoff = alive_cutoff(now) if now is not None else Now() - alive_window()
        return self.filter(stopped_at__isnull=True, last_heartbeat__gte=cutoff)


class AuditQuerySet(models.QuerySet):
    def of_job(self, job_id):
        """A job's audit trail, newest first (through the (job, at) index)."""
        return self.filter(job_id=job_id).order_by("-at", "-pk")


class SubscriptionQuerySet(models.QuerySet):
    def live(self):
        """Subscriptions that notify: active, on an active channel."""
        return self.filter(is_active=True, channel__is_active=True)


class DeliveryQuerySet(models.QuerySet):
    def due(self, now):
        """Deliveries to attempt now: waiting and due, or claimed by a sender that stopped before it
        recorded the outcome (a claim moves next_attempt_at to the end of its lease)."""
        return self.filter(status__in=(DeliveryStatus.PENDING, DeliveryStatus.SENDING), next_attempt_at__lte=now)

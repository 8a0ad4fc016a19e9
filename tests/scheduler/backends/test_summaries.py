"""The run summary and the job tally the database keeps: they follow every way a row moves, on the
database this pass runs on (SQLite or PostgreSQL), and a rebuild from the tables agrees with them."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from scheduler.backends import NewRun, backend
from scheduler.enums import ExecutionStatus as S
from scheduler.enums import ExecutionTrigger
from scheduler.models import SUMMARY_BUCKETS, ExecutionSummary, JobExecution, JobTally, ScheduledJob
from scheduler.querysets import JOB_STATE_FILTERS
from scheduler.services.executions import (
    RunEnded,
    RunStarted,
    execution_fail,
    execution_finish,
    execution_start,
    executions_record,
)
from scheduler.services.jobs import job_delete, job_disable, job_enable, job_pause, job_resume
from scheduler.services.leases import leases_reap
from tests.factories import ExecutionFactory, IntervalJobFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)


def summary(**filters) -> dict:
    """{status: (runs, timed, total_ms, max_ms)} summed over shards and minutes."""
    rows = (
        ExecutionSummary.objects.filter(**filters)
        .order_by()
        .values("status")
        .annotate(runs=Sum("runs"), t=Sum("timed"), ms=Sum("total_ms"))
    )
    return {row["status"]: (row["runs"], row["t"], row["ms"]) for row in rows}


def snapshot():
    rows = (
        ExecutionSummary.objects.order_by()
        .values("minute", "status")
        .annotate(
            runs=Sum("runs"), timed=Sum("timed"), total=Sum("total_ms"), **{n: Sum(n) for n, _ in SUMMARY_BUCKETS}
        )
    )
    return sorted(
        (r["minute"], r["status"], *(v for k, v in sorted(r.items()) if k not in ("minute", "status"))) for r in rows
    )


def test_a_run_through_the_services_counts_its_start_and_its_end(interval_job):
    due = timezone.now() - timedelta(milliseconds=150)
    execution = execution_start(ExecutionFactory(job=interval_job, scheduled_time=due), instance_id="a")
    execution_finish(execution)
    counts = summary()
    assert counts[S.RUNNING][0] == 1 and counts[S.SUCCESS][0] == 1
    # The start's time is its fire lag (150 ms and the moment the test took: a scheduled run).
    [start] = ExecutionSummary.objects.filter(status=S.RUNNING)
    assert start.timed == 1 and 150 <= start.total_ms < 5000 and start.le_100ms == 0
    assert start.minute == execution.started_at.replace(second=0, microsecond=0)
    # The end's time is its duration.
    [end] = ExecutionSummary.objects.filter(status=S.SUCCESS)
    assert (end.timed, end.total_ms, end.max_ms) == (1, execution.duration_ms, execution.duration_ms)


def test_manual_runs_start_without_a_fire_lag(interval_job):
    manual = ExecutionFactory(job=interval_job, trigger=ExecutionTrigger.MANUAL, scheduled_time=NOW)
    execution_start(manual)
    [start] = ExecutionSummary.objects.filter(status=S.RUNNING)
    assert (start.runs, start.timed, start.total_ms, start.max_ms) == (1, 0, 0, None)


def test_claimed_runs_that_never_start_count_as_they_are_inserted(interval_job):
    with transaction.atomic():
        backend().runs_insert(
            [
                NewRun(interval_job.pk, S.PENDING, NOW, ""),
                NewRun(interval_job.pk, S.MISSED, NOW - timedelta(minutes=1), "late"),
                NewRun(interval_job.pk, S.SKIPPED, NOW - timedelta(minutes=2), "full"),
            ],
            trigger=ExecutionTrigger.SCHEDULED,
            instance_id="a",
            now=NOW,
            lease_expires_at=NOW + timedelta(hours=1),
        )
    counts = summary()
    assert counts[S.MISSED][0] == 1 and counts[S.SKIPPED][0] == 1
    assert S.PENDING not in counts and S.RUNNING not in counts
    assert counts[S.MISSED][1] == 0  # no duration for a run that never ran


def test_a_batch_of_outcomes_in_one_statement_counts_each_run_once(interval_job):
    runs = [ExecutionFactory(job=interval_job, scheduled_time=NOW + timedelta(seconds=n)) for n in range(6)]
    started = [RunStarted(r.pk, NOW + timedelta(seconds=n, milliseconds=50), "a", "h") for n, r in enumerate(runs)]
    executions_record(started[:3], [])  # three start in one batch
    ended = [
        RunEnded(r.pk, S.SUCCESS if n % 2 else S.FAILED, started[n].started_at, NOW + timedelta(seconds=n + 2))
        for n, r in enumerate(runs)
    ]
    executions_record(started[3:], ended)  # three start and end in the same batch; all six end
    counts = summary()
    assert counts[S.RUNNING][0] == 6
    assert counts[S.SUCCESS][0] == 3 and counts[S.FAILED][0] == 3
    assert counts[S.SUCCESS][1] == 3  # each has its duration
    # Recording the same batch again moves nothing, so counts nothing.
    executions_record([], ended)
    assert summary() == counts


def test_reaped_runs_count_as_failed(interval_job, settings):
    execution = ExecutionFactory(job=interval_job, scheduled_time=NOW)
    execution_start(execution, instance_id="gone")
    from scheduler.models import JobLease

    JobLease.objects.create(
        job=interval_job, execution=execution, locked_by="gone", locked_at=NOW, expires_at=NOW - timedelta(hours=1)
    )
    leases_reap()
    assert summary()[S.FAILED][0] == 1


def test_deleting_rows_leaves_the_counts_of_the_past_alone(interval_job):
    execution = ExecutionFactory(job=interval_job, scheduled_time=NOW)
    execution_fail(execution_start(execution), error="boom")
    before = summary()
    JobExecution.objects.all().delete()
    assert summary() == before


def test_a_rebuild_from_the_table_agrees_with_what_the_triggers_kept(interval_job):
    for n in range(8):
        execution = ExecutionFactory(job=interval_job, scheduled_time=NOW + timedelta(minutes=n))
        execution_start(execution)
        (execution_finish if n % 3 else execution_fail)(execution, **({} if n % 3 else {"error": "x"}))
    ExecutionFactory(job=interval_job, status=S.MISSED, scheduled_time=NOW - timedelta(hours=1), finished_at=NOW)
    ExecutionFactory(job=interval_job, status=S.PENDING, scheduled_time=NOW - timedelta(hours=2))
    kept = snapshot()
    backend().summaries_rebuild()
    assert snapshot() == kept


def tally_by_state() -> dict:
    return {state: JobTally.objects.jobs(condition) for state, condition in JOB_STATE_FILTERS.items()}


def table_by_state() -> dict:
    return {state: ScheduledJob.objects.filter(condition).count() for state, condition in JOB_STATE_FILTERS.items()}


def test_the_job_tally_follows_every_state_change():
    jobs = [IntervalJobFactory() for _ in range(5)]
    assert tally_by_state() == table_by_state()
    job_pause(jobs[0], reason="r")
    job_disable(jobs[1])
    job_delete(jobs[2])
    job_pause(jobs[3])
    job_resume(jobs[3])
    job_disable(jobs[4])
    job_enable(jobs[4])
    assert tally_by_state() == table_by_state()
    # Raw updates and deletes too: the database keeps it, not the services.
    ScheduledJob.objects.filter(pk=jobs[0].pk).update(is_active=False)
    ScheduledJob.objects.filter(pk=jobs[1].pk).delete()
    ScheduledJob.objects.filter(pk=jobs[3].pk).update(next_run_time=NOW)  # not a state column
    assert tally_by_state() == table_by_state()
    backend().summaries_rebuild()
    assert tally_by_state() == table_by_state()


def test_installing_again_keeps_one_set_of_triggers(interval_job):
    backend().summaries_install()
    backend().summaries_install()
    execution_finish(execution_start(ExecutionFactory(job=interval_job, scheduled_time=NOW)))
    assert summary()[S.SUCCESS][0] == 1
    IntervalJobFactory()
    assert tally_by_state() == table_by_state()


def test_every_way_a_run_ends_is_an_end_and_waiting_is_not(interval_job):
    waiting = ExecutionFactory(job=interval_job, status=S.WAITING, scheduled_time=NOW)
    assert summary() == {}
    JobExecution.objects.filter(pk=waiting.pk).update(status=S.CANCELLED, finished_at=NOW)
    running = ExecutionFactory(
        job=interval_job, status=S.RUNNING, scheduled_time=NOW + timedelta(minutes=1), started_at=NOW
    )
    JobExecution.objects.filter(pk=running.pk).update(
        status=S.TIMED_OUT, finished_at=NOW + timedelta(seconds=30), duration_ms=30_000
    )
    counts = summary()
    assert counts[S.CANCELLED] == (1, 0, 0)  # it never ran: no duration
    assert counts[S.TIMED_OUT] == (1, 1, 30_000)  # it ran, for 30 s

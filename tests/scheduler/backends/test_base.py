"""The backend contract, held by the backend of the database this pass runs on (SQLite or PostgreSQL)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction

from scheduler.backends import NewRun, backend
from scheduler.backends.base import run_key
from scheduler.enums import ExecutionStatus as S
from scheduler.enums import ExecutionTrigger
from scheduler.models import JobExecution, JobLease, ScheduledJob
from scheduler.services.executions import RunEnded, RunStarted, _lifecycle_rows
from tests.factories import ExecutionFactory, IntervalJobFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(hours=1)


def insert(runs):
    with transaction.atomic():
        backend().claim_durable()
        return backend().runs_insert(
            runs, trigger=ExecutionTrigger.SCHEDULED, instance_id="proc-1", now=NOW, lease_expires_at=EXPIRES
        )


def test_runs_insert_writes_the_runs_and_leases_the_pending_ones():
    job = IntervalJobFactory()
    at1, at2 = NOW - timedelta(minutes=1), NOW
    inserted = insert([NewRun(job.pk, S.PENDING, at1, ""), NewRun(job.pk, S.SKIPPED, at2, "skipped: full")])
    assert set(inserted) == {run_key(job.pk, at1), run_key(job.pk, at2)}
    pending = JobExecution.objects.get(pk=inserted[run_key(job.pk, at1)][0])
    skipped = JobExecution.objects.get(pk=inserted[run_key(job.pk, at2)][0])
    assert (pending.status, pending.instance_id, pending.finished_at) == (S.PENDING, "proc-1", None)
    assert (skipped.status, skipped.error_message, skipped.finished_at) == (S.SKIPPED, "skipped: full", NOW)
    [lease] = JobLease.objects.all()
    assert (lease.execution_id, lease.locked_by, lease.locked_at, lease.expires_at) == (
        pending.pk,
        "proc-1",
        NOW,
        EXPIRES,
    )


def test_runs_insert_drops_a_fire_time_that_already_ran_and_keeps_the_rest():
    job = IntervalJobFactory()
    ExecutionFactory(job=job, scheduled_time=NOW, status=S.SUCCESS)
    later = NOW + timedelta(minutes=5)
    inserted = insert([NewRun(job.pk, S.PENDING, NOW, ""), NewRun(job.pk, S.PENDING, later, "")])
    assert list(inserted) == [run_key(job.pk, later)]
    assert JobLease.objects.get().execution_id == inserted[run_key(job.pk, later)][0]


def test_runs_insert_matches_a_repeated_wall_clock_time_to_its_own_instant():
    job = IntervalJobFactory()
    second_one_thirty = datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York"))
    inserted = insert([NewRun(job.pk, S.PENDING, second_one_thirty, "")])
    assert run_key(job.pk, second_one_thirty) in inserted
    assert JobExecution.objects.get().scheduled_time == second_one_thirty.astimezone(UTC)


def test_jobs_advance_writes_next_and_last_run_times_and_the_next_start():
    a, b = IntervalJobFactory(), IntervalJobFactory()
    later = NOW + timedelta(seconds=7)
    backend().jobs_advance([(a.pk, NOW, NOW - timedelta(minutes=5), later), (b.pk, None, None, None)])
    a.refresh_from_db(), b.refresh_from_db()
    assert (a.next_run_time, a.last_run_time, a.next_start_at) == (NOW, NOW - timedelta(minutes=5), later)
    assert (b.next_run_time, b.last_run_time, b.next_start_at) == (None, None, None)


def test_lifecycle_write_moves_rows_only_from_where_they_must_be_and_frees_ended_runs():
    job = IntervalJobFactory()
    ran = ExecutionFactory(job=job, scheduled_time=NOW, status=S.PENDING)
    reaped = ExecutionFactory(job=job, scheduled_time=NOW + timedelta(minutes=5), status=S.FAILED)
    for execution in (ran, reaped):
        JobLease.objects.create(job=job, execution=execution, locked_by="proc-1", locked_at=NOW, expires_at=EXPIRES)
    started = [RunStarted(e.pk, NOW, "proc-1", "host") for e in (ran, reaped)]
    ended = [RunEnded(e.pk, S.SUCCESS, NOW, NOW + timedelta(seconds=2), result={"ok": 1}) for e in (ran, reaped)]
    with transaction.atomic():
        moved = backend().lifecycle_write(_lifecycle_rows(started, ended), [ran.pk, reaped.pk])
    assert moved == {ran.pk}
    ran.refresh_from_db(), reaped.refresh_from_db()
    assert (ran.status, ran.started_at, ran.duration_ms, ran.result, ran.hostname) == (
        S.SUCCESS,
        NOW,
        2000,
        {"ok": 1},
        "host",
    )
    assert reaped.status == S.FAILED and reaped.result is None  # the reaper's outcome stands
    assert not JobLease.objects.exists()  # both rows are finished, so both slots are free


def test_claim_durable_and_announcements_work_inside_a_transaction():
    with transaction.atomic():
        backend().claim_durable()
        backend().changes_announce('{"job": null, "execution": null}')
        assert ScheduledJob.objects.exists()


def test_with_ids_filters_like_in_for_an_empty_a_short_and_a_long_list_and_in_an_update():
    job = IntervalJobFactory()
    runs = [ExecutionFactory(job=job, scheduled_time=NOW + timedelta(seconds=i)) for i in range(3)]
    ids = [r.pk for r in runs]
    db, executions = backend(), JobExecution.objects.filter(job=job)
    assert list(db.with_ids(executions, [])) == []
    assert sorted(db.with_ids(executions, ids[:2]).values_list("pk", flat=True)) == ids[:2]
    # A crowd's worth of ids, most of them matching nothing.
    many = [*range(10_000_000, 10_020_000), ids[2]]
    assert list(db.with_ids(executions, many).values_list("pk", flat=True)) == [ids[2]]
    lease = JobLease.objects.create(job=job, execution=runs[0], locked_by="proc-1", locked_at=NOW, expires_at=NOW)
    assert db.with_ids(JobLease.objects.all(), [runs[0].pk], field="execution_id").update(expires_at=EXPIRES) == 1
    lease.refresh_from_db()
    assert lease.expires_at == EXPIRES

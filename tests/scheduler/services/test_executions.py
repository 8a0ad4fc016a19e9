"""Tests of the execution services: the lifecycle, what each step records, leases, and history cleanup."""

import decimal
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.models import ExecutionStatus, ExecutionTrigger, JobExecution, JobLease
from scheduler.services.executions import (
    InvalidTransition,
    RunEnded,
    RunStarted,
    execution_end,
    execution_fail,
    execution_finish,
    execution_start,
    executions_record,
)
from tests.factories import IntervalJobFactory
from tests.scheduler.services.conftest import T0, execution_of

pytestmark = pytest.mark.django_db

S = ExecutionStatus


@pytest.fixture
def job(db):
    return IntervalJobFactory()


def lease_for(execution, instance="sched-1"):
    now = datetime.now(UTC)
    return JobLease.objects.create(
        job_id=execution.job_id,
        execution=execution,
        locked_by=instance,
        locked_at=now,
        expires_at=now + timedelta(hours=1),
    )


def stored(execution) -> JobExecution:
    return JobExecution.objects.get(pk=execution.pk)


# --- the lifecycle ---------------------------------------------------------------------------


def test_pending_run_starts_then_succeeds(job, clock):
    execution = execution_of(job)
    clock.advance(seconds=1)
    execution_start(execution, instance_id="sched-1", hostname="web-1", celery_task_id="celery-42")
    row = stored(execution)
    assert row.status == S.RUNNING
    assert row.started_at == T0 + timedelta(seconds=1)
    assert (row.instance_id, row.hostname, row.celery_task_id) == ("sched-1", "web-1", "celery-42")
    assert row.finished_at is None

    clock.advance(seconds=1, milliseconds=500)
    execution_finish(execution, result={"rows": 3})
    row = stored(execution)
    assert row.status == S.SUCCESS
    assert row.finished_at == T0 + timedelta(seconds=2, milliseconds=500)
    assert row.duration_ms == 1500
    assert row.result == {"rows": 3}
    assert row.error_message == "" and row.traceback == ""
    # The caller's copy reflects what was stored.
    assert (execution.status, execution.duration_ms) == (S.SUCCESS, 1500)


def test_running_run_fails_with_error_and_traceback(job, clock):
    execution = execution_start(execution_of(job))
    clock.advance(milliseconds=250)
    execution_fail(execution, error="boom: disk full", traceback="Traceback (most recent call last):\n  ...")
    row = stored(execution)
    assert row.status == S.FAILED
    assert row.error_message == "boom: disk full"
    assert row.traceback.startswith("Traceback")
    assert row.finished_at == T0 + timedelta(milliseconds=250)
    assert row.duration_ms == 250
    assert row.result is None


def test_error_may_be_an_exception(job):
    execution = execution_start(execution_of(job))
    execution_fail(execution, error=ValueError("bad input"))
    assert stored(execution).error_message == "bad input"


def test_pending_run_that_could_not_start_fails_without_a_duration(job, clock):
    execution = execution_of(job)
    execution_fail(execution, error="task function is inactive")
    row = stored(execution)
    assert row.status == S.FAILED
    assert row.started_at is None and row.duration_ms is None
    assert row.finished_at == T0
    assert row.error_message == "task function is inactive"


def test_long_error_is_truncated(job):
    execution = execution_start(execution_of(job))
    execution_fail(execution, error="x" * 20000)
    assert len(stored(execution).error_message) == 10000


def test_start_keeps_the_claiming_instance_when_none_is_given(job):
    execution = execution_of(job, instance_id="sched-7")
    execution_start(execution, celery_task_id="celery-1")
    row = stored(execution)
    assert (row.instance_id, row.celery_task_id) == ("sched-7", "celery-1")


def test_duration_is_never_negative(job, clock):
    execution = execution_start(execution_of(job))
    clock.advance(seconds=-5)  # a clock stepped back between start and finish
    execution_finish(execution)
    assert stored(execution).duration_ms == 0


def test_manual_run_follows_the_same_lifecycle(job):
    execution = execution_of(job, trigger=ExecutionTrigger.MANUAL)
    execution_finish(execution_start(execution), result="done")
    assert stored(execution).status == S.SUCCESS and stored(execution).result == "done"


# --- refused transitions -------------------------------------------------------------------

OPERATIONS = {
    "start": lambda e: execution_start(e, instance_id="late"),
    "finish": lambda e: execution_finish(e, result="late"),
    "fail": lambda e: execution_fail(e, error="late"),
    "time out": lambda e: execution_end(e, status=S.TIMED_OUT, error="late"),
    "cancel": lambda e: execution_end(e, status=S.CANCELLED, error="late"),
}
ALLOWED = {
    ("pending", "start"),
    ("running", "finish"),
    ("pending", "fail"),
    ("running", "fail"),
    ("running", "time out"),
    ("pending", "cancel"),
    ("waiting", "cancel"),
    ("running", "cancel"),
}
ILLEGAL = [
    pytest.param(status, op, id=f"{status}-{op}")
    for status in S.values
    for op in OPERATIONS
    if (status, op) not in ALLOWED
]


def test_every_state_is_covered():
    assert len(ILLEGAL) == len(S.values) * len(OPERATIONS) - len(ALLOWED) == 37


@pytest.mark.parametrize("status, op", ILLEGAL)
def test_illegal_transition_is_refused_and_changes_nothing(job, status, op):
    finished = datetime(2026, 1, 2, tzinfo=UTC)
    execution = execution_of(job, status=status, error_message="original", finished_at=finished)
    lease = lease_for(execution)
    with pytest.raises(InvalidTransition) as exc:
        OPERATIONS[op](execution)
    assert f"is {status}" in str(exc.value)
    row = stored(execution)
    assert row.status == status
    assert (row.error_message, row.finished_at, row.instance_id, row.result) == ("original", finished, "", None)
    assert JobLease.objects.filter(pk=lease.pk).exists()


@pytest.mark.parametrize(
    "status, op",
    [("success", "start"), ("running", "start"), ("failed", "finish"), ("pending", "finish"), ("missed", "start")],
)
def test_refusal_says_what_the_state_is_and_what_is_allowed(job, status, op):
    execution = execution_of(job, status=status)
    with pytest.raises(InvalidTransition, match=f"is {status}; it cannot become .* \\(allowed from: "):
        OPERATIONS[op](execution)


def test_second_starter_loses_the_race(job):
    execution = execution_of(job)
    other_copy = stored(execution)
    execution_start(execution, instance_id="sched-1")
    with pytest.raises(InvalidTransition):
        execution_start(other_copy, instance_id="sched-2")
    assert stored(execution).instance_id == "sched-1"


def test_transition_decided_by_the_stored_state_not_the_callers_copy(job):
    execution = execution_start(execution_of(job))
    stale = stored(execution)
    execution_fail(execution, error="first outcome")
    with pytest.raises(InvalidTransition):
        execution_finish(stale, result="second outcome")
    row = stored(execution)
    assert (row.status, row.error_message, row.result) == (S.FAILED, "first outcome", None)


def test_transition_of_a_deleted_execution_is_refused(job):
    execution = execution_of(job)
    JobExecution.objects.filter(pk=execution.pk).delete()
    with pytest.raises(InvalidTransition, match="gone"):
        execution_start(execution)


# --- results -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "result",
    [None, 0, 42, 3.5, True, "done", [], [1, "two", None], {"a": {"b": [1, 2, {"c": None}]}}, {"unicode": "été ✓"}],
)
def test_json_results_are_stored_as_given(job, result):
    execution = execution_finish(execution_start(execution_of(job)), result=result)
    assert stored(execution).result == result


def test_results_django_can_encode_are_stored_as_their_json_form(job):
    result = {
        "when": datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
        "amount": decimal.Decimal("1.50"),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    }
    execution = execution_finish(execution_start(execution_of(job)), result=result)
    assert stored(execution).result == {
        "when": "2026-01-01T12:00:00Z",
        "amount": "1.50",
        "id": "12345678-1234-5678-1234-567812345678",
    }


class Unserialisable:
    def __repr__(self):
        return "<Unserialisable thing>"


@pytest.mark.parametrize(
    "result, text",
    [
        (Unserialisable(), "<Unserialisable thing>"),
        ({"thing": Unserialisable()}, "{'thing': <Unserialisable thing>}"),
        ({1, 2, 3}, "{1, 2, 3}"),
        (b"\x00\x01", "b'\\x00\\x01'"),
        (float("nan"), "nan"),
        ({"mean": float("inf")}, "{'mean': inf}"),
    ],
)
def test_results_json_cannot_hold_are_stored_as_their_repr(job, result, text):
    execution = execution_finish(execution_start(execution_of(job)), result=result)
    row = stored(execution)
    assert row.status == S.SUCCESS
    assert row.result == {"repr": text}


@pytest.mark.parametrize(
    "text, escaped",
    [("a\x00b", "a\\x00b"), ("report-\udcff.csv", "report-\\udcff.csv")],
    ids=["nul", "lone-surrogate"],
)
def test_text_no_database_can_hold_is_stored_escaped(job, text, escaped):
    succeeded = execution_finish(execution_start(execution_of(job)), result={"out": text})
    failed = execution_fail(execution_start(execution_of(job)), error=f"cannot read {text}", traceback=f"tb {text}")
    assert stored(succeeded).status == S.SUCCESS
    assert stored(succeeded).result == {"repr": f"{{'out': '{escaped}'}}"}
    row = stored(failed)
    assert row.status == S.FAILED
    assert (row.error_message, row.traceback) == (f"cannot read {escaped}", f"tb {escaped}")


# --- batched recording (the engine's inline runs) ------------------------------------------------

AT = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def started(execution, at=AT):
    return RunStarted(execution.pk, at, "sched-1", "host-a")


def succeeded(execution, result=None, at=AT):
    return RunEnded(execution.pk, S.SUCCESS, at, at + timedelta(milliseconds=250), result=result)


def test_a_run_started_and_ended_in_one_batch_is_recorded_whole(job):
    execution = execution_of(job)
    lease_for(execution)
    executions_record([started(execution)], [succeeded(execution, {"n": 1})])
    row = stored(execution)
    assert (row.status, row.result, row.duration_ms) == (S.SUCCESS, {"n": 1}, 250)
    assert (row.instance_id, row.hostname) == ("sched-1", "host-a")
    assert row.started_at == AT and row.finished_at == AT + timedelta(milliseconds=250)  # to the microsecond
    assert not JobLease.objects.exists()


def test_a_run_started_in_one_batch_and_ended_in_the_next_keeps_its_start(job):
    execution = execution_of(job)
    lease_for(execution)
    executions_record([started(execution)], [])
    assert (stored(execution).status, stored(execution).started_at) == (S.RUNNING, AT)
    assert JobLease.objects.exists()
    executions_record([], [succeeded(execution, "done")])
    row = stored(execution)
    assert (row.status, row.started_at, row.result, row.hostname) == (S.SUCCESS, AT, "done", "host-a")
    assert not JobLease.objects.exists()


def test_a_batched_failure_records_the_error_and_traceback(job):
    execution = execution_of(job)
    ended = RunEnded(
        execution.pk, S.FAILED, AT, AT + timedelta(seconds=1), error="ValueError: bad \x00", traceback="tb"
    )
    executions_record([started(execution)], [ended])
    row = stored(execution)
    assert (row.status, row.error_message, row.traceback, row.duration_ms) == (
        S.FAILED,
        "ValueError: bad \\x00",
        "tb",
        1000,
    )


def test_a_run_refused_before_it_started_fails_from_pending_without_a_start(job):
    execution = execution_of(job)
    lease_for(execution)
    executions_record([], [RunEnded(execution.pk, S.FAILED, None, AT, error="inactive")])
    row = stored(execution)
    assert (row.status, row.started_at, row.error_message, row.duration_ms) == (S.FAILED, None, "inactive", None)
    assert not JobLease.objects.exists()


def test_a_batch_leaves_a_run_another_process_already_ended_as_it_was(job):
    reaped = execution_of(job, status=S.FAILED, error_message="lease expired", finished_at=AT)
    lease_for(reaped)
    executions_record([started(reaped)], [succeeded(reaped, "late")])
    row = stored(reaped)
    assert (row.status, row.error_message, row.result, row.started_at) == (S.FAILED, "lease expired", None, None)
    assert not JobLease.objects.exists()


def test_an_end_that_cannot_apply_keeps_the_lease_so_the_run_expires_instead_of_hanging(job):
    # Its start was never recorded (a flush lost while the database was down): the row is still
    # pending, and only the lease's expiry will fail it with a reason.
    execution = execution_of(job)
    lease_for(execution)
    executions_record([], [succeeded(execution, "done")])
    assert stored(execution).status == S.PENDING
    assert JobLease.objects.filter(execution=execution).exists()


@pytest.mark.parametrize(
    "result, expected",
    [
        (None, None),
        ({"a": [1, None, "été"]}, {"a": [1, None, "été"]}),
        ({"when": datetime(2026, 1, 1, 12, 0, tzinfo=UTC)}, {"when": "2026-01-01T12:00:00Z"}),
        (float("nan"), {"repr": "nan"}),
        ({"out": "a\x00b"}, {"repr": "{'out': 'a\\x00b'}"}),
    ],
    ids=["none", "json", "django-encodable", "nan", "nul"],
)
def test_batched_results_are_stored_as_the_immediate_services_store_them(job, result, expected):
    execution = execution_of(job)
    executions_record([started(execution)], [succeeded(execution, result)])
    assert stored(execution).result == expected
    if result is None:
        assert JobExecution.objects.filter(pk=execution.pk, result__isnull=True).exists()


def test_many_runs_in_one_batch_are_all_recorded(job):
    executions = [execution_of(job) for _ in range(300)]
    executions_record([started(e) for e in executions], [succeeded(e, e.pk) for e in executions[::2]])
    statuses = dict(JobExecution.objects.filter(pk__in=[e.pk for e in executions]).values_list("pk", "status"))
    assert [statuses[e.pk] for e in executions] == [S.SUCCESS, S.RUNNING] * 150
    assert all(stored(e).result == e.pk for e in executions[:4:2])


# --- leases ----------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["finish", "fail"])
def test_finishing_releases_the_runs_lease_only(job, outcome):
    execution = execution_start(execution_of(job))
    neighbour = execution_start(execution_of(job))
    lease_for(execution, "sched-1")
    kept = lease_for(neighbour, "sched-2")
    OPERATIONS[outcome](execution)
    assert not JobLease.objects.filter(execution=execution).exists()
    assert list(JobLease.objects.filter(job=job)) == [kept]


def test_failing_a_pending_run_releases_its_lease(job):
    execution = execution_of(job)
    lease_for(execution)
    execution_fail(execution, error="lease expired: the process running it stopped")
    assert not JobLease.objects.exists()

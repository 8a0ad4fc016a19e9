"""Claims under each overlap policy: waiting runs (no lease, no process) started in fire-time order
as slots free, skipped beyond the policy's limit, held while the job is paused, skipped once it is
deleted; cancel_other / terminate_other asking the oldest run to stop."""

from datetime import timedelta

import pytest

from scheduler.enums import ExecutionStatus, ExecutionTrigger, OverlapPolicy
from scheduler.models import JobExecution, JobLease, TaskFunction
from scheduler.services.claims import runs_claim, runs_release
from scheduler.services.executions import execution_end, execution_start
from scheduler.services.jobs import job_delete, job_disable, job_enable, job_pause, job_resume, job_trigger, job_update
from scheduler.services.runs import execution_run
from tests.scheduler.services.conftest import T0, A, B, interval_job

pytestmark = pytest.mark.usefixtures("only_test_jobs", "clock")

PENDING, WAITING, SKIPPED = ExecutionStatus.PENDING, ExecutionStatus.WAITING, ExecutionStatus.SKIPPED
RUNNING, SUCCESS, CANCELLED = ExecutionStatus.RUNNING, ExecutionStatus.SUCCESS, ExecutionStatus.CANCELLED


def fire(clock, instance_id=A, minutes=5):
    """Let the clock reach the next fire time (every 5 minutes) and claim what is due then."""
    return runs_claim(instance_id=instance_id, now=clock.advance(minutes=minutes))


def claim(clock, instance_id=A):
    return runs_claim(instance_id=instance_id, now=clock.now)


def runs(job) -> list[JobExecution]:
    return list(JobExecution.objects.filter(job=job).order_by("scheduled_time", "pk"))


def statuses(job) -> list[str]:
    return [e.status for e in runs(job)]


def leased(job) -> list[int]:
    return sorted(JobLease.objects.filter(job=job).values_list("execution_id", flat=True))


def end(execution_id) -> JobExecution:
    """Run a claimed run to its end (noop: success), which frees its slot."""
    execution_run(execution_id, instance_id=JobExecution.objects.get(pk=execution_id).instance_id)
    return JobExecution.objects.get(pk=execution_id)


def test_buffer_all_keeps_each_run_due_while_full_waiting_with_no_lease_and_no_process(clock):
    job = interval_job(overlap_policy=OverlapPolicy.BUFFER_ALL, args=[1], kwargs={"k": "v"})
    [first] = claim(clock)

    assert fire(clock, B) == []
    assert fire(clock, A) == []

    first_row, *waiting = runs(job)
    assert first_row.pk == first.execution_id and first_row.status == PENDING
    assert [(w.scheduled_time, w.status) for w in waiting] == [
        (T0 + timedelta(minutes=5), WAITING),
        (T0 + timedelta(minutes=10), WAITING),
    ]
    for row in waiting:
        assert row.instance_id == "" and row.finished_at is None and row.started_at is None
        assert row.error_message == (
            "waiting: max_instances (1) runs of this job were in progress (overlap policy buffer_all)"
        )
        assert (row.args, row.kwargs, row.trigger, row.attempt) == ([1], {"k": "v"}, ExecutionTrigger.SCHEDULED, 1)
    assert leased(job) == [first.execution_id], "waiting runs count against nothing"
    assert JobExecution.objects.unclaimed().filter(job=job).count() == 0, "not unclaimed pending runs either"


def test_waiting_runs_start_one_by_one_in_fire_time_order_as_their_slot_frees(clock):
    job = interval_job(overlap_policy=OverlapPolicy.BUFFER_ALL)
    [first] = claim(clock)
    for _ in range(3):
        fire(clock)
    waiting = [e.pk for e in runs(job)[1:]]

    assert claim(clock, B) == [], "no slot is free while the first run holds its lease"
    started = []
    previous = first.execution_id
    for _ in waiting:
        assert end(previous).status == SUCCESS
        [run] = claim(clock, B)
        started.append(run.execution_id)
        row = JobExecution.objects.get(pk=run.execution_id)
        assert (row.status, row.instance_id, row.error_message) == (PENDING, B, "")
        assert leased(job) == [run.execution_id]
        assert JobLease.objects.get(execution=row).locked_by == B
        assert run.trigger == ExecutionTrigger.SCHEDULED and run.scheduled_time == row.scheduled_time
        previous = run.execution_id

    assert started == waiting
    end(previous)
    assert statuses(job) == [SUCCESS] * 4


def test_a_job_with_two_slots_starts_its_two_oldest_waiting_runs_together(clock):
    job = interval_job(overlap_policy=OverlapPolicy.BUFFER_ALL, max_instances=2, coalesce=False)
    first, second = claim(clock), fire(clock)
    for _ in range(3):
        fire(clock)
    oldest_waiting = [e.pk for e in runs(job) if e.status == WAITING][:2]
    assert statuses(job) == [PENDING, PENDING, WAITING, WAITING, WAITING]

    end(first[0].execution_id)
    end(second[0].execution_id)
    started = claim(clock, B)

    assert sorted(run.execution_id for run in started) == oldest_waiting
    assert statuses(job) == [SUCCESS, SUCCESS, PENDING, PENDING, WAITING]
    assert len(leased(job)) == 2


def test_a_freed_slot_goes_to_the_longest_waiting_run_not_to_the_run_due_now(clock):
    job = interval_job(overlap_policy=OverlapPolicy.BUFFER_ALL)
    [first] = claim(clock)
    fire(clock)
    waited = runs(job)[1]
    end(first.execution_id)

    [started] = fire(clock, B)  # the run due now is decided after the waiting one took the slot

    assert started.execution_id == waited.pk
    assert statuses(job) == [SUCCESS, PENDING, WAITING]


def test_buffer_one_keeps_one_run_waiting_and_skips_the_later_ones(clock):
    job = interval_job(overlap_policy=OverlapPolicy.BUFFER_ONE)
    [first] = claim(clock)
    fire(clock)
    fire(clock)
    fire(clock)

    assert statuses(job) == [PENDING, WAITING, SKIPPED, SKIPPED]
    skipped = runs(job)[2]
    assert skipped.error_message == (
        "skipped: 1 run of this job already waiting, the most its overlap policy (buffer_one) keeps"
    )
    assert skipped.finished_at is not None and skipped.instance_id == A

    end(first.execution_id)
    [started] = claim(clock)
    assert started.execution_id == runs(job)[1].pk
    fire(clock)
    assert statuses(job) == [SUCCESS, PENDING, SKIPPED, SKIPPED, WAITING], "a place to wait is free again"


def test_skip_records_the_run_skipped_as_before(clock):
    job = interval_job(overlap_policy=OverlapPolicy.SKIP)
    claim(clock)

    assert fire(clock) == []

    assert statuses(job) == [PENDING, SKIPPED]
    assert runs(job)[1].error_message == (
        "skipped: max_instances (1) runs of this job were in progress (overlap policy skip)"
    )


def test_allow_all_starts_every_run_whatever_max_instances_says(clock):
    job = interval_job(overlap_policy=OverlapPolicy.ALLOW_ALL, max_instances=1)
    claimed = claim(clock) + fire(clock) + fire(clock, B)

    assert len(claimed) == 3
    assert statuses(job) == [PENDING] * 3
    assert len(leased(job)) == 3


@pytest.mark.parametrize("policy", [OverlapPolicy.CANCEL_OTHER, OverlapPolicy.TERMINATE_OTHER])
def test_stopping_policies_ask_the_oldest_run_to_stop_and_start_the_new_one_once_it_has(clock, policy):
    job = interval_job(overlap_policy=policy)
    [first] = claim(clock)
    execution_start(JobExecution.objects.get(pk=first.execution_id), instance_id=A)

    assert fire(clock, B) == []

    oldest, newer = runs(job)
    assert newer.status == WAITING and newer.instance_id == ""
    assert oldest.status == RUNNING, "it runs on until its process stops it"
    assert oldest.cancel_requested_at == clock.now
    assert oldest.cancel_reason == f"cancelled by the overlap policy {policy}: a newer run is due"
    assert oldest.cancel_requested_by is None and oldest.cancel_pending

    # A third run due while one already waits is skipped, and asks nobody else to stop.
    fire(clock)
    assert statuses(job) == [RUNNING, WAITING, SKIPPED]
    assert JobExecution.objects.filter(job=job, cancel_requested_at__isnull=False).count() == 1

    # The engine ends the run cancelled (here: what its process records); the waiting one starts.
    execution_end(oldest, status=CANCELLED, error=oldest.cancel_reason)
    [started] = claim(clock, B)
    assert started.execution_id == newer.pk
    assert leased(job) == [newer.pk]


def test_cancel_other_stops_a_claimed_run_before_it_starts(clock):
    job = interval_job(overlap_policy=OverlapPolicy.CANCEL_OTHER)
    [first] = claim(clock)
    fire(clock, B)

    ended = execution_run(first.execution_id, instance_id=A)  # its process gets round to it

    assert ended.status == CANCELLED
    row = JobExecution.objects.get(pk=first.execution_id)
    assert row.started_at is None, "it never started"
    assert row.error_message.startswith("cancelled by the overlap policy cancel_other")
    [started] = claim(clock, B)
    assert started.execution_id == runs(job)[1].pk


def test_a_stopping_policy_with_a_free_slot_stops_nothing(clock):
    job = interval_job(overlap_policy=OverlapPolicy.CANCEL_OTHER, max_instances=2)
    claim(clock)
    fire(clock)

    assert statuses(job) == [PENDING, PENDING]
    assert not JobExecution.objects.filter(job=job, cancel_requested_at__isnull=False).exists()


@pytest.mark.parametrize("stop, restart", [(job_pause, job_resume), (job_disable, job_enable)])
def test_a_paused_or_disabled_jobs_waiting_runs_stay_waiting_until_it_fires_again(clock, stop, restart):
    job = interval_job(overlap_policy=OverlapPolicy.BUFFER_ALL)
    [first] = claim(clock)
    fire(clock)
    stop(job)
    end(first.execution_id)

    assert claim(clock, B) == []
    assert statuses(job) == [SUCCESS, WAITING]
    assert leased(job) == []

    restart(job)
    [started] = claim(clock, B)
    assert started.execution_id == runs(job)[1].pk


def test_a_deleted_jobs_waiting_runs_are_skipped_and_never_start(clock):
    job = interval_job(overlap_policy=OverlapPolicy.BUFFER_ALL)
    [first] = claim(clock)
    fire(clock)
    fire(clock)
    job_delete(job)
    end(first.execution_id)

    assert claim(clock, B) == []

    assert statuses(job) == [SUCCESS, SKIPPED, SKIPPED]
    for row in runs(job)[1:]:
        assert row.error_message == "skipped: the job was deleted before the run started"
        assert row.finished_at == clock.now and row.started_at is None
    assert leased(job) == []
    assert not JobExecution.objects.waiting().exists()


def test_a_manual_run_of_a_full_job_waits_under_buffer_one_and_a_second_is_skipped(clock, user):
    job = interval_job(overlap_policy=OverlapPolicy.BUFFER_ONE)
    [first] = claim(clock)

    waiting = job_trigger(job, user=user)
    skipped = job_trigger(job, user=user)
    assert claim(clock, B) == []

    waiting.refresh_from_db()
    skipped.refresh_from_db()
    assert (waiting.status, waiting.instance_id, waiting.trigger) == (WAITING, "", ExecutionTrigger.MANUAL)
    assert waiting.error_message.startswith("waiting: max_instances (1)")
    assert skipped.status == SKIPPED and skipped.error_message.startswith("skipped: 1 run of this job already waiting")

    end(first.execution_id)
    [started] = claim(clock, B)
    assert (started.execution_id, started.trigger) == (waiting.pk, ExecutionTrigger.MANUAL)


def test_manual_runs_all_start_under_allow_all(clock):
    job = interval_job(overlap_policy=OverlapPolicy.ALLOW_ALL)
    claim(clock)
    job_trigger(job)
    job_trigger(job)

    assert len(claim(clock, B)) == 2
    assert statuses(job) == [PENDING] * 3


def test_a_run_that_waited_then_started_runs_with_the_arguments_it_recorded(clock):
    job = interval_job(
        overlap_policy=OverlapPolicy.BUFFER_ALL,
        task_function=TaskFunction.objects.get(name="tasks.functions.echo"),
        args=["at fire time"],
    )
    [first] = claim(clock)
    fire(clock)
    job_update(job, args=["edited later"])
    end(first.execution_id)

    [started] = claim(clock)

    assert started.target.args == ["at fire time"]
    assert end(started.execution_id).result == {"args": ["at fire time"], "kwargs": {}}


def test_slot_freed_by_a_run_with_a_waiting_successor_wakes_the_processes(
    clock, announcements, django_capture_on_commit_callbacks
):
    job = interval_job(overlap_policy=OverlapPolicy.BUFFER_ALL)
    interval_job()  # another job, with no waiting run: its run's end wakes nobody
    first, other_run = sorted(claim(clock), key=lambda run: run.job_id != job.pk)
    fire(clock)
    announcements.clear()

    with django_capture_on_commit_callbacks(execute=True):
        end(other_run.execution_id)
    assert announcements == []

    with django_capture_on_commit_callbacks(execute=True):
        end(first.execution_id)
    assert announcements == [(None, None)]


def test_a_run_that_waited_then_was_given_back_unstarted_waits_again_in_its_place(clock):
    job = interval_job(overlap_policy=OverlapPolicy.BUFFER_ALL, misfire_grace_time=60)
    [first] = claim(clock)
    for _ in range(3):
        fire(clock)
    end(first.execution_id)
    [started] = claim(clock)  # the longest waiting run, 10 minutes past its fire time
    # Its process stops before starting it and gives it back.
    runs_release([started.execution_id], instance_id=A)

    given_back = JobExecution.objects.get(pk=started.execution_id)
    assert (given_back.status, given_back.instance_id) == (WAITING, "")
    [restarted] = claim(clock, B)

    assert restarted.execution_id == started.execution_id, "it keeps its place in fire-time order"
    assert statuses(job) == [SUCCESS, PENDING, WAITING, WAITING], "and is not missed however long it waited"


def test_a_skip_jobs_run_given_back_unstarted_is_claimed_again_as_before(clock):
    job = interval_job(overlap_policy=OverlapPolicy.SKIP)
    [run] = claim(clock)
    runs_release([run.execution_id], instance_id=A)

    assert statuses(job) == [PENDING] and JobExecution.objects.get(pk=run.execution_id).instance_id == ""
    assert [r.execution_id for r in claim(clock, B)] == [run.execution_id]

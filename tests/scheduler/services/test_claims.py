"""Claiming due runs: misfire, coalesce, exactly once, max_instances, priority, manual runs, release."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from scheduler.models import (
    ExecutionStatus,
    ExecutionTrigger,
    JobExecution,
    JobLease,
    ScheduledJob,
)
from scheduler.services import claims
from scheduler.services.claims import CATCH_UP_LIMIT, runs_claim, runs_plan, runs_release
from scheduler.services.jobs import job_delete, job_disable, job_pause, job_trigger
from tests.factories import CronJobFactory, IntervalJobFactory

pytestmark = pytest.mark.django_db

# A Monday at noon UTC; every claim below passes `now` explicitly, so no test waits for time.
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
A, B = "instance-a", "instance-b"
PENDING, MISSED, SKIPPED = ExecutionStatus.PENDING, ExecutionStatus.MISSED, ExecutionStatus.SKIPPED


def at(**delta) -> datetime:
    return T0 + timedelta(**delta)


@pytest.fixture(autouse=True)
def only_test_jobs(db):
    """Take the built-in jobs off the schedule, so a claim only sees the jobs a test creates."""
    ScheduledJob.objects.update(is_enabled=False, next_run_time=None)


def due_at(job: ScheduledJob, when: datetime) -> ScheduledJob:
    """Move the job's persisted next run (what the engine reads) to `when`, as a raw update."""
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=when)
    job.refresh_from_db()
    return job


def interval_job(*, due: datetime = T0, **fields) -> ScheduledJob:
    """A job every 5 minutes (unless told otherwise) whose grid is anchored at `due`."""
    fields.setdefault("interval_minutes", 5)
    return due_at(IntervalJobFactory(**fields), due)


def plan(job, now):
    planned, next_time = runs_plan(job, now)
    return [(run.scheduled_time, run.status) for run in planned], next_time


def executions_of(job) -> list[JobExecution]:
    return list(JobExecution.objects.filter(job=job).order_by("scheduled_time", "pk"))


# --- runs_plan: misfire_grace_time and coalesce as APScheduler defines them --------------------


def test_a_run_late_within_the_grace_time_still_runs():
    job = interval_job(misfire_grace_time=60)
    assert plan(job, at(seconds=30)) == ([(T0, PENDING)], at(minutes=5))


def test_a_run_exactly_at_the_grace_time_runs_and_one_second_later_is_missed():
    job = interval_job(misfire_grace_time=60)
    assert plan(job, at(seconds=60)) == ([(T0, PENDING)], at(minutes=5))
    planned, next_time = runs_plan(job, at(seconds=61))
    assert [(run.scheduled_time, run.status) for run in planned] == [(T0, MISSED)]
    assert "61.0s late" in planned[0].reason
    assert "misfire grace time of 60s" in planned[0].reason
    assert next_time == at(minutes=5)


def test_coalesce_collapses_overdue_runs_into_the_latest_one():
    job = interval_job(misfire_grace_time=300, coalesce=True)
    # Down from T0 to T0+17m: T0, +5, +10 and +15 were due; only +15 (2 minutes late) runs.
    assert plan(job, at(minutes=17)) == ([(at(minutes=15), PENDING)], at(minutes=20))


def test_coalesced_run_is_missed_when_the_latest_overdue_time_is_itself_beyond_grace():
    job = interval_job(misfire_grace_time=60, coalesce=True)
    assert plan(job, at(minutes=17)) == ([(at(minutes=15), MISSED)], at(minutes=20))


def test_without_coalesce_each_overdue_time_gets_its_own_record():
    job = interval_job(misfire_grace_time=60, coalesce=False)
    planned, next_time = plan(job, at(minutes=15, seconds=30))
    assert planned == [
        (T0, MISSED),
        (at(minutes=5), MISSED),
        (at(minutes=10), MISSED),
        (at(minutes=15), PENDING),
    ]
    assert next_time == at(minutes=20)


def test_without_coalesce_every_overdue_time_within_grace_runs():
    job = interval_job(misfire_grace_time=3600, coalesce=False)
    planned, _ = plan(job, at(minutes=12))
    assert planned == [(T0, PENDING), (at(minutes=5), PENDING), (at(minutes=10), PENDING)]


def test_a_job_not_yet_due_plans_nothing():
    job = interval_job()
    assert plan(job, at(seconds=-1)) == ([], T0)


def test_catch_up_limit_skips_ahead_on_the_grid_after_long_downtime():
    job = interval_job(interval_minutes=None, interval_seconds=1, misfire_grace_time=60, coalesce=False)
    now = at(seconds=3 * CATCH_UP_LIMIT, microseconds=500_000)
    planned, next_time = plan(job, now)
    assert next_time == at(seconds=3 * CATCH_UP_LIMIT + 1), "resumes on its grid right after now"
    assert len(planned) <= 2 * CATCH_UP_LIMIT, "the backlog examined in one claim is bounded"
    assert len(set(time for time, _ in planned)) == len(planned)
    # The runs still within the grace time are not lost to the limit.
    pending = [time for time, status in planned if status == PENDING]
    assert pending == [at(seconds=3 * CATCH_UP_LIMIT - 59 + k) for k in range(60)]
    assert all(status == MISSED for time, status in planned if time < now - timedelta(seconds=60))


def test_catch_up_limit_with_coalesce_still_runs_the_latest_overdue_time():
    """APScheduler runs the latest overdue time when it is within grace, however long the downtime."""
    job = interval_job(interval_minutes=None, interval_seconds=1, misfire_grace_time=60, coalesce=True)
    now = at(seconds=3 * CATCH_UP_LIMIT, microseconds=500_000)
    assert plan(job, now) == ([(at(seconds=3 * CATCH_UP_LIMIT), PENDING)], at(seconds=3 * CATCH_UP_LIMIT + 1))


def test_after_long_downtime_a_coalescing_job_runs_once_at_its_latest_fire_time():
    job = interval_job(interval_minutes=None, interval_seconds=1, misfire_grace_time=60, coalesce=True)
    [run] = runs_claim(instance_id=A, now=at(seconds=3 * CATCH_UP_LIMIT, microseconds=500_000))
    assert run.scheduled_time == at(seconds=3 * CATCH_UP_LIMIT)
    assert [(e.scheduled_time, e.status) for e in executions_of(job)] == [(run.scheduled_time, PENDING)]
    job.refresh_from_db()
    assert job.next_run_time == at(seconds=3 * CATCH_UP_LIMIT + 1)


def test_catch_up_limit_on_a_cron_job_runs_the_latest_minute_within_grace():
    job = due_at(CronJobFactory(cron_expression="* * * * *", misfire_grace_time=120, coalesce=True), T0)
    now = at(minutes=CATCH_UP_LIMIT + 30, seconds=10)
    assert plan(job, now) == ([(at(minutes=CATCH_UP_LIMIT + 30), PENDING)], at(minutes=CATCH_UP_LIMIT + 31))


# --- runs_claim: executions, leases, next_run_time ----------------------------------------------


def test_claim_creates_a_pending_scheduled_execution_with_a_lease(settings):
    settings.SCHEDULER_LOCK_TTL = 900
    job = interval_job(priority=3)
    now = at(seconds=2)

    [run] = runs_claim(instance_id=A, now=now)

    assert (run.job_id, run.scheduled_time, run.priority, run.trigger) == (job.pk, T0, 3, "scheduled")
    assert run.offload is False
    execution = JobExecution.objects.get(pk=run.execution_id)
    assert execution.status == PENDING
    assert execution.trigger == ExecutionTrigger.SCHEDULED
    assert execution.scheduled_time == T0
    assert execution.instance_id == A
    lease = JobLease.objects.get(execution=execution)
    assert (lease.job_id, lease.locked_by, lease.locked_at) == (job.pk, A, now)
    assert lease.expires_at == now + timedelta(seconds=900)
    job.refresh_from_db()
    assert job.next_run_time == at(minutes=5)
    assert job.last_run_time == T0, "last_run_time is the fire time, set when the run is claimed"


def test_an_execution_is_created_when_it_is_recorded_whatever_moment_the_claim_plans_for():
    interval_job()
    before = timezone.now()
    [run] = runs_claim(instance_id=A, now=at(seconds=2))
    created = JobExecution.objects.get(pk=run.execution_id).created_at
    assert before <= created <= timezone.now()  # history order and retention go by it


def test_a_run_planned_in_another_zone_is_still_handed_over_after_its_claim(monkeypatch):
    # The second 01:30 of New York's fall-back night compares unequal to the same instant in UTC
    # (PEP 495); the claim must still match the inserted row to the run and hand it over.
    repeated = datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York"))
    job = interval_job(due=repeated.astimezone(UTC))
    monkeypatch.setattr(claims, "runs_plan", lambda job, now: ([claims.PlannedRun(repeated, PENDING)], at(days=400)))

    [run] = runs_claim(instance_id=A, now=repeated.astimezone(UTC) + timedelta(seconds=1))

    assert run.job_id == job.pk
    assert JobExecution.objects.get(pk=run.execution_id).scheduled_time == repeated.astimezone(UTC)
    assert JobLease.objects.filter(execution_id=run.execution_id).exists()


def test_interval_job_keeps_its_cadence_from_the_anchor_not_from_the_claim_time():
    job = interval_job(misfire_grace_time=120)
    scheduled = []
    for lag in (timedelta(seconds=7), timedelta(seconds=95), timedelta(0), timedelta(seconds=59)):
        job.refresh_from_db()
        [run] = runs_claim(instance_id=A, now=job.next_run_time + lag)
        scheduled.append(run.scheduled_time)
        JobLease.objects.all().delete()  # the run finished
    assert scheduled == [T0, at(minutes=5), at(minutes=10), at(minutes=15)]
    job.refresh_from_db()
    assert job.next_run_time == at(minutes=20)


def test_interval_grid_survives_downtime():
    job = interval_job(misfire_grace_time=300, coalesce=True)
    [run] = runs_claim(instance_id=A, now=at(minutes=23, seconds=41))
    assert run.scheduled_time == at(minutes=20)
    job.refresh_from_db()
    assert job.next_run_time == at(minutes=25)


def test_cron_job_advances_to_its_next_cron_time():
    job = due_at(CronJobFactory(cron_expression="*/10 * * * *", timezone="Europe/Paris"), T0)
    [run] = runs_claim(instance_id=A, now=at(seconds=3))
    assert run.scheduled_time == T0
    job.refresh_from_db()
    assert job.next_run_time == at(minutes=10)


def test_missed_run_is_recorded_without_a_lease_and_without_running():
    job = interval_job(misfire_grace_time=60)
    assert runs_claim(instance_id=A, now=at(minutes=2)) == []
    [execution] = executions_of(job)
    assert execution.status == MISSED
    assert execution.finished_at == at(minutes=2)
    assert "more than the misfire grace time of 60s" in execution.error_message
    assert not JobLease.objects.exists()
    job.refresh_from_db()
    assert job.next_run_time == at(minutes=5)
    assert job.last_run_time is None, "a missed run did not run"


def test_a_second_claim_at_the_same_time_claims_nothing():
    job = interval_job()
    now = at(seconds=1)
    assert len(runs_claim(instance_id=A, now=now)) == 1
    assert runs_claim(instance_id=A, now=now) == []
    assert runs_claim(instance_id=B, now=now) == []
    assert len(executions_of(job)) == 1
    assert JobLease.objects.count() == 1


def test_each_fire_time_is_claimed_once_across_alternating_processes():
    job = interval_job(interval_minutes=1)
    claimed = []
    for minute in range(10):
        for instance in (A, B):
            claimed += runs_claim(instance_id=instance, now=at(minutes=minute, seconds=1))
        JobLease.objects.all().delete()
    assert [run.scheduled_time for run in claimed] == [at(minutes=m) for m in range(10)]
    assert JobExecution.objects.filter(job=job).count() == 10


def test_batch_size_limits_a_claim_and_the_rest_follow():
    jobs = [interval_job() for _ in range(5)]
    first = runs_claim(instance_id=A, now=at(seconds=1), batch_size=2)
    rest = runs_claim(instance_id=B, now=at(seconds=1), batch_size=10)
    assert len(first) == 2 and len(rest) == 3
    assert {run.job_id for run in first + rest} == {job.pk for job in jobs}


# --- max_instances ------------------------------------------------------------------------------


def test_run_over_max_instances_is_recorded_skipped_while_leases_are_live():
    job = interval_job(max_instances=2, misfire_grace_time=30)
    assert len(runs_claim(instance_id=A, now=at(seconds=1))) == 1
    assert len(runs_claim(instance_id=B, now=at(minutes=5, seconds=1))) == 1

    assert runs_claim(instance_id=A, now=at(minutes=10, seconds=1)) == []

    skipped = executions_of(job)[-1]
    assert (skipped.scheduled_time, skipped.status) == (at(minutes=10), SKIPPED)
    assert "max_instances (2)" in skipped.error_message
    assert skipped.finished_at == at(minutes=10, seconds=1)
    assert JobLease.objects.filter(job=job).count() == 2, "a skipped run takes no lease"
    job.refresh_from_db()
    assert job.next_run_time == at(minutes=15)


def test_an_expired_lease_does_not_count_against_max_instances(settings):
    settings.SCHEDULER_LOCK_TTL = 600
    job = interval_job(max_instances=1)
    assert len(runs_claim(instance_id=A, now=at(seconds=1))) == 1
    # Within the TTL the lease holds the only slot ...
    assert runs_claim(instance_id=B, now=at(minutes=5, seconds=1)) == []
    # ... once it expires (a process died) the slot is free again, even before any reaping.
    [run] = runs_claim(instance_id=B, now=at(minutes=10, seconds=1))
    assert run.scheduled_time == at(minutes=10)
    assert [e.status for e in executions_of(job)] == [PENDING, SKIPPED, PENDING]


def test_overdue_runs_without_coalesce_fill_the_free_slots_and_skip_the_rest():
    job = interval_job(max_instances=2, misfire_grace_time=3600, coalesce=False)
    runs = runs_claim(instance_id=A, now=at(minutes=10, seconds=1))
    assert [run.scheduled_time for run in runs] == [T0, at(minutes=5)]
    assert [(e.scheduled_time, e.status) for e in executions_of(job)] == [
        (T0, PENDING),
        (at(minutes=5), PENDING),
        (at(minutes=10), SKIPPED),
    ]


# --- priority -----------------------------------------------------------------------------------


def test_runs_due_together_come_back_highest_priority_first():
    low = interval_job(priority=0)
    high = interval_job(priority=10, due=at(seconds=-30))
    middle = interval_job(priority=5, due=at(seconds=-50))
    negative = interval_job(priority=-3, due=at(seconds=-55))
    runs = runs_claim(instance_id=A, now=at(seconds=1))
    assert [run.job_id for run in runs] == [high.pk, middle.pk, low.pk, negative.pk]
    assert [run.priority for run in runs] == [10, 5, 0, -3]


def test_priority_orders_manual_and_scheduled_runs_together():
    now = timezone.now()
    scheduled = interval_job(priority=1, due=now - timedelta(seconds=1))
    manual = interval_job(priority=9, due=now + timedelta(hours=1))
    job_trigger(manual)
    runs = runs_claim(instance_id=A, now=now)
    assert [(run.job_id, run.trigger) for run in runs] == [(manual.pk, "manual"), (scheduled.pk, "scheduled")]


# --- jobs that must never fire ------------------------------------------------------------------


@pytest.mark.parametrize("stop", [job_pause, job_disable, job_delete], ids=["paused", "disabled", "deleted"])
def test_paused_disabled_and_deleted_jobs_are_never_claimed(stop):
    job = interval_job()
    stop(job)
    due_at(job, T0)  # even a stale next_run_time left on the row must not fire it
    assert runs_claim(instance_id=A, now=at(hours=1)) == []
    assert not JobExecution.objects.filter(job=job).exists()


# --- manual runs --------------------------------------------------------------------------------


def test_manual_run_is_claimed_with_a_lease(user):
    now = timezone.now()
    job = interval_job(due=now + timedelta(hours=1))
    execution = job_trigger(job, user=user)
    assert execution.instance_id == ""

    [run] = runs_claim(instance_id=A, now=now)

    assert (run.execution_id, run.trigger, run.job_id) == (execution.pk, "manual", job.pk)
    execution.refresh_from_db()
    assert (execution.status, execution.instance_id, execution.triggered_by) == (PENDING, A, user)
    assert JobLease.objects.get(execution=execution).locked_by == A
    job.refresh_from_db()
    assert job.last_run_time == now, "a manual run's last_run_time is its claim time"
    assert job.next_run_time == now + timedelta(hours=1), "a manual run leaves the schedule alone"
    assert runs_claim(instance_id=B, now=now) == [], "claimed once"


def test_manual_run_over_max_instances_is_skipped():
    now = timezone.now()
    job = interval_job(max_instances=1, due=now - timedelta(seconds=1))
    assert len(runs_claim(instance_id=A, now=now)) == 1  # the scheduled run holds the slot
    execution = job_trigger(job)

    assert runs_claim(instance_id=B, now=now + timedelta(seconds=1)) == []

    execution.refresh_from_db()
    assert execution.status == SKIPPED
    assert "max_instances (1)" in execution.error_message
    assert not JobLease.objects.filter(execution=execution).exists()


def test_manual_run_is_not_missed_however_late_it_is_claimed():
    job = interval_job(misfire_grace_time=1, due=timezone.now() + timedelta(hours=1))
    execution = job_trigger(job)
    [run] = runs_claim(instance_id=A, now=timezone.now() + timedelta(minutes=10))
    assert run.execution_id == execution.pk


# --- runs_release -------------------------------------------------------------------------------


def test_released_run_goes_back_and_another_process_claims_it():
    job = interval_job(misfire_grace_time=60)
    [run] = runs_claim(instance_id=A, now=at(seconds=1))

    assert runs_release([run.execution_id], instance_id=A) == 1

    execution = JobExecution.objects.get(pk=run.execution_id)
    assert (execution.status, execution.instance_id) == (PENDING, "")
    assert not JobLease.objects.exists()
    [again] = runs_claim(instance_id=B, now=at(seconds=20))
    assert (again.execution_id, again.scheduled_time) == (run.execution_id, T0)
    execution.refresh_from_db()
    assert execution.instance_id == B
    assert JobLease.objects.get(execution=execution).locked_by == B
    assert JobExecution.objects.filter(job=job).count() == 1


def test_released_scheduled_run_claimed_after_its_grace_time_is_missed():
    interval_job(misfire_grace_time=60)
    [run] = runs_claim(instance_id=A, now=at(seconds=1))
    runs_release([run.execution_id], instance_id=A)

    assert runs_claim(instance_id=B, now=at(seconds=90)) == []

    execution = JobExecution.objects.get(pk=run.execution_id)
    assert execution.status == MISSED
    assert "90.0s late" in execution.error_message
    assert not JobLease.objects.exists()


def test_release_only_gives_back_this_process_runs_that_have_not_started():
    interval_job()
    [run] = runs_claim(instance_id=A, now=at(seconds=1))
    assert runs_release([run.execution_id], instance_id=B) == 0
    assert JobLease.objects.filter(execution_id=run.execution_id, locked_by=A).exists()
    JobExecution.objects.filter(pk=run.execution_id).update(status=ExecutionStatus.RUNNING)
    assert runs_release([run.execution_id], instance_id=A) == 0
    assert JobExecution.objects.get(pk=run.execution_id).instance_id == A


# --- the unique (job, scheduled_time) guard -----------------------------------------------------


def test_existing_run_for_the_same_fire_time_is_not_duplicated_and_the_job_still_advances():
    job = interval_job()
    other = interval_job()
    JobExecution.objects.create(
        job=job,
        trigger=ExecutionTrigger.SCHEDULED,
        scheduled_time=T0,
        status=ExecutionStatus.SUCCESS,
        instance_id="someone-else",
    )

    runs = runs_claim(instance_id=A, now=at(seconds=1))

    assert [run.job_id for run in runs] == [other.pk], "the rest of the batch is claimed as usual"
    [execution] = executions_of(job)
    assert (execution.status, execution.instance_id) == (ExecutionStatus.SUCCESS, "someone-else")
    assert not JobLease.objects.filter(job=job).exists()
    job.refresh_from_db()
    assert job.next_run_time == at(minutes=5)
    # and the next fire time runs normally
    [run] = runs_claim(instance_id=A, now=at(minutes=5))
    assert (run.job_id, run.scheduled_time) == (job.pk, at(minutes=5))


def test_moving_next_run_time_back_to_a_time_that_already_ran_does_not_run_it_again():
    job = interval_job()
    [first] = runs_claim(instance_id=A, now=at(seconds=1))
    JobLease.objects.all().delete()
    due_at(job, T0)  # a raw edit puts the job back on a fire time that already ran

    assert runs_claim(instance_id=B, now=at(seconds=30)) == []

    assert [e.pk for e in executions_of(job)] == [first.execution_id]
    job.refresh_from_db()
    assert job.next_run_time == at(minutes=5)


# --- a claim that cannot plan a job, and one with many runs to write ----------------------------


def test_a_job_with_no_next_fire_time_is_paused_and_the_others_still_run(monkeypatch):
    broken, healthy = IntervalJobFactory(), IntervalJobFactory()
    due = timezone.now() - timedelta(seconds=1)
    ScheduledJob.objects.filter(pk__in=[broken.pk, healthy.pk]).update(next_run_time=due)
    real_plan = claims.runs_plan

    def plan(job, now):
        if job.pk == broken.pk:
            raise ValueError("never matches a real date")
        return real_plan(job, now)

    monkeypatch.setattr(claims, "runs_plan", plan)
    claimed = runs_claim(instance_id="A")
    assert [run.job_id for run in claimed] == [healthy.pk]
    broken.refresh_from_db()
    assert broken.is_paused and "no next fire time (never matches a real date)" in broken.pause_reason
    assert runs_claim(instance_id="A") == []  # the paused job no longer comes due


def test_a_claim_writes_at_most_so_many_runs_and_leaves_the_rest_due(monkeypatch):
    monkeypatch.setattr(claims, "MAX_RUNS_PER_CLAIM", 3)
    jobs = [
        IntervalJobFactory(
            interval_minutes=None, interval_seconds=1, coalesce=False, misfire_grace_time=3600, max_instances=10
        )
        for _ in range(2)
    ]
    ScheduledJob.objects.filter(pk__in=[j.pk for j in jobs]).update(
        next_run_time=timezone.now() - timedelta(seconds=4.5)
    )
    first = runs_claim(instance_id="A")
    assert {run.job_id for run in first} == {jobs[0].pk} and len(first) == 5  # one job's catch-up
    second = runs_claim(instance_id="A")
    assert {run.job_id for run in second} == {jobs[1].pk}


# --- claiming ahead of time ---------------------------------------------------------------------


def test_a_claim_ahead_takes_the_next_fire_time_of_a_job_starting_soon_and_says_when_it_starts():
    soon = interval_job(due=at(seconds=0.03))
    later = interval_job(due=at(seconds=0.2))
    [run] = runs_claim(instance_id=A, now=T0, ahead_until=at(seconds=0.05))
    assert (run.job_id, run.scheduled_time, run.start_at) == (soon.pk, at(seconds=0.03), at(seconds=0.03))
    assert [(e.scheduled_time, e.status) for e in executions_of(soon)] == [(at(seconds=0.03), PENDING)]
    assert JobLease.objects.filter(job=soon).count() == 1
    soon.refresh_from_db()
    assert soon.next_run_time == at(minutes=5, seconds=0.03), "advanced past the claimed fire time only"
    assert not executions_of(later)
    assert runs_claim(instance_id=A, now=T0) == [], "without a look-ahead nothing is due yet"


def test_a_run_due_now_is_claimed_to_start_at_once():
    job = interval_job(due=at(seconds=-1))
    [run] = runs_claim(instance_id=A, now=T0, ahead_until=at(seconds=0.05))
    assert (run.job_id, run.start_at) == (job.pk, None)


def test_a_job_with_a_run_in_progress_is_not_claimed_ahead_and_is_decided_at_its_time():
    job = interval_job(due=T0, interval_minutes=None, interval_seconds=1, max_instances=1)
    [first] = runs_claim(instance_id=A, now=T0)
    # Its run still holds the slot: claimed ahead, the next fire time would have been skipped.
    assert runs_claim(instance_id=B, now=at(seconds=0.97), ahead_until=at(seconds=1.02)) == []
    assert [e.scheduled_time for e in executions_of(job)] == [T0]
    JobLease.objects.filter(execution_id=first.execution_id).delete()  # the run ended
    [second] = runs_claim(instance_id=B, now=at(seconds=1))
    assert (second.scheduled_time, second.start_at) == (at(seconds=1), None)


def test_a_crowd_is_the_first_second_in_which_enough_jobs_start():
    for _ in range(3):
        interval_job(due=at(seconds=2))
    interval_job(due=at(seconds=1))
    interval_job(due=at(seconds=-1))  # due already: not a crowd to come
    jobs = ScheduledJob.objects
    assert jobs.crowd_start(T0, at(seconds=6), size=3) == at(seconds=2)
    assert jobs.crowd_start(T0, at(seconds=6), size=4) is None
    assert jobs.crowd_start(T0, at(seconds=1.5), size=3) is None, "beyond the look"

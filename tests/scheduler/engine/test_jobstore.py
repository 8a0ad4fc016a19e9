"""The job store's claim cadence: when it asks to claim next, what one claim takes, and when a crowd is\nclaimed."""

import contextlib
import time
from datetime import UTC, datetime, timedelta

import pytest

from scheduler import clock
from scheduler.engine import jobstore
from scheduler.engine.jobstore import CROWD_LOOK_EVERY, DatabaseJobStore
from scheduler.enums import ExecutionStatus
from scheduler.models import JobLease, ScheduledJob
from tests.factories import ExecutionFactory, IntervalJobFactory

pytestmark = pytest.mark.django_db

AHEAD = 0.2


store_submitted = []


@pytest.fixture
def store(settings):
    store_submitted.clear()
    settings.SCHEDULER_CLAIM_AHEAD = AHEAD
    store = DatabaseJobStore(
        instance_id="store-test",
        submit=store_submitted.extend,
        on_claimed=lambda runs: None,
        batch_size=500,
        guard=lambda what: contextlib.nullcontext(),
    )
    store._scheduler, store._alias = None, "default"  # what BaseJobStore.start() sets
    yield store
    store._lanes.shutdown()


def _jobs_starting(first: datetime, count: int, apart: timedelta) -> list[ScheduledJob]:
    jobs = []
    for i in range(count):
        job = IntervalJobFactory(interval_minutes=5)
        ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=first + i * apart)
        jobs.append(job)
    return jobs


def _sleep_until(host_time: datetime) -> None:
    time.sleep(max(0.0, (host_time - datetime.now(UTC)).total_seconds()))


def test_one_claim_takes_the_runs_of_a_whole_look_ahead_and_the_next_claim_comes_a_lead_before_the_rest(store):
    first = clock.now() + timedelta(seconds=1)
    apart = timedelta(milliseconds=100)
    jobs = _jobs_starting(first, 10, apart)

    wake = store.get_next_run_time()
    # A quarter of the look-ahead before the first start (the lead), on this host's clock.
    assert abs((wake + clock.offset()) - (first - timedelta(seconds=AHEAD / 4))) < timedelta(milliseconds=20)
    _sleep_until(wake)
    assert store.get_due_jobs(datetime.now(UTC)) == [], "claimed runs go to the executor, not through APScheduler"
    claimed = list(store_submitted)

    # Claimed at the lead or later, it took every start up to a look-ahead from then: the first
    # two at least (the start 150 ms after the claim's time is in), never the whole second.
    assert 2 <= len(claimed) < len(jobs)
    ids = [run.job_id for _, run in claimed]
    assert ids == [job.pk for job in jobs[: len(ids)]], "the earliest starts, in order"
    offset = clock.offset().total_seconds()
    host_starts = [run.start_at.timestamp() - offset for _, run in claimed]
    assert [starts_at for starts_at, _ in claimed] == pytest.approx(host_starts, abs=0.005), (
        "each starts at its own time, on this host's clock"
    )

    following = jobs[len(ids)]
    following.refresh_from_db()
    wake = store.get_next_run_time()
    assert abs((wake + clock.offset()) - (following.next_run_time - timedelta(seconds=AHEAD / 4))) < timedelta(
        milliseconds=20
    ), "the next claim comes a lead before the first start the last one left"


def test_on_an_idle_fleet_a_crowd_beyond_the_first_look_is_still_claimed_a_whole_crowd_look_ahead_before_it(
    store, settings, monkeypatch
):
    """Nothing but the crowd is due, so nothing else wakes the loop: it must wake to look again."""
    monkeypatch.setattr(jobstore, "CROWD_SIZE", 3)
    ahead = timedelta(seconds=settings.SCHEDULER_CLAIM_AHEAD_CROWD)
    ScheduledJob.objects.update(is_enabled=False)  # only this test's jobs are due
    looked_at = clock.now()
    # Past what one look covers, on a whole second (a crowd is told by the second it starts in).
    crowd = (looked_at + ahead + CROWD_LOOK_EVERY + timedelta(seconds=2)).replace(microsecond=0)
    _jobs_starting(crowd, 3, timedelta(0))

    wake = store._claim_time(crowd, looked_at)
    assert wake <= looked_at + CROWD_LOOK_EVERY, "it wakes to look again before the first look runs out"
    assert store._claim_time(crowd, wake) == crowd - ahead, "that look sees the crowd and claims it from then"


def test_once_a_crowd_is_claimed_the_next_look_comes_at_once_and_finds_the_crowd_of_the_following_second(
    store, monkeypatch
):
    monkeypatch.setattr(jobstore, "CROWD_SIZE", 3)
    store.crowd_ahead = timedelta(seconds=30)  # the crowds stay ahead however slowly this test goes
    ScheduledJob.objects.update(is_enabled=False)  # only this test's jobs are due
    first = (clock.now() + timedelta(seconds=10)).replace(microsecond=0)
    crowds = [_jobs_starting(first, 3, timedelta(0)), _jobs_starting(first + timedelta(seconds=1.5), 3, timedelta(0))]
    # And a crowd's worth that no claim takes ahead, their last runs still going: they must not be
    # taken for a crowd still to claim, over and over.
    for job in _jobs_starting(first, 3, timedelta(0)):
        run = ExecutionFactory(job=job, status=ExecutionStatus.RUNNING, instance_id="elsewhere")
        JobLease.objects.create(
            job=job,
            execution=run,
            locked_by="elsewhere",
            locked_at=clock.now(),
            expires_at=clock.now() + timedelta(hours=1),
        )

    for crowd in crowds:
        wake = store.get_next_run_time()
        assert wake <= datetime.now(UTC), "a crowd within the crowd look-ahead is claimed at once"
        store.get_due_jobs(datetime.now(UTC))
        assert {run.job_id for _, run in store_submitted} == {job.pk for job in crowd}, "this crowd, before it starts"
        store_submitted.clear()
    assert store.get_next_run_time() > datetime.now(UTC), "nothing left to claim"


def test_a_crowd_seen_early_is_claimed_only_from_a_crowd_look_ahead_before_it(store, settings, monkeypatch):
    """Claimed sooner, more of its jobs would still have a run in progress and be left for their time."""
    monkeypatch.setattr(jobstore, "CROWD_SIZE", 3)
    ahead = timedelta(seconds=settings.SCHEDULER_CLAIM_AHEAD_CROWD)
    ScheduledJob.objects.update(is_enabled=False)  # only this test's jobs are due
    crowd = (clock.now() + ahead + CROWD_LOOK_EVERY).replace(microsecond=0)  # seen by the first look
    _jobs_starting(crowd, 3, timedelta(0))

    def wake_on_the_database_clock():
        return store.get_next_run_time() + clock.offset()

    assert abs(wake_on_the_database_clock() - (crowd - ahead)) < timedelta(milliseconds=10)
    store.get_due_jobs(datetime.now(UTC))  # the loop woke sooner (the poll, a change heard)
    assert store_submitted == [], "not claimed yet"
    assert abs(wake_on_the_database_clock() - (crowd - ahead)) < timedelta(milliseconds=10), "still to be claimed then"

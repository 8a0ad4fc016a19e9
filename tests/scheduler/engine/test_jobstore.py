"""The job store's claim cadence: when it asks to claim next, and what one claim takes."""

import contextlib
import time
from datetime import UTC, datetime, timedelta

import pytest

from scheduler import clock
from scheduler.engine.jobstore import DatabaseJobStore
from scheduler.models import ScheduledJob
from tests.factories import IntervalJobFactory

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

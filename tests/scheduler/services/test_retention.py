"""History retention: the age rule, dry runs and batches; runs in progress are never touched."""

from datetime import timedelta

import pytest

from scheduler.backends import backend
from scheduler.models import ExecutionStatus, JobExecution
from scheduler.services.jobs import job_delete
from scheduler.services.retention import executions_cleanup
from tests.factories import IntervalJobFactory
from tests.scheduler.services.conftest import T0, execution_of

pytestmark = pytest.mark.django_db

S = ExecutionStatus


@pytest.fixture
def job(db):
    return IntervalJobFactory()


# --- history cleanup -------------------------------------------------------------------------


def aged(execution, days: float, now=T0):
    JobExecution.objects.filter(pk=execution.pk).update(created_at=now - timedelta(days=days))
    return execution


def remaining_ids(*executions):
    return set(JobExecution.objects.filter(pk__in=[e.pk for e in executions]).values_list("pk", flat=True))


def test_cleanup_deletes_finished_runs_older_than_the_retention(job, clock, settings):
    settings.SCHEDULER_HISTORY_RETENTION_DAYS = 30
    old_finished = [aged(execution_of(job, status=s), 31) for s in (S.SUCCESS, S.FAILED, S.SKIPPED, S.MISSED)]
    recent = [aged(execution_of(job, status=s), 29) for s in (S.SUCCESS, S.FAILED)]
    old_unfinished = [aged(execution_of(job, status=s), 400) for s in (S.PENDING, S.RUNNING)]
    assert executions_cleanup() == 4
    assert remaining_ids(*old_finished) == set()
    assert remaining_ids(*recent, *old_unfinished) == {e.pk for e in (*recent, *old_unfinished)}


def test_cleanup_follows_the_retention_setting(job, clock, settings):
    settings.SCHEDULER_HISTORY_RETENTION_DAYS = 7
    week_old = aged(execution_of(job, status=S.SUCCESS), 8)
    fresh = aged(execution_of(job, status=S.SUCCESS), 6)
    assert executions_cleanup() == 1
    assert remaining_ids(week_old, fresh) == {fresh.pk}


def test_cleanup_argument_overrides_the_setting(job, clock, settings):
    settings.SCHEDULER_HISTORY_RETENTION_DAYS = 30
    ten_days = aged(execution_of(job, status=S.SUCCESS), 10)
    assert executions_cleanup(older_than_days=5) == 1
    assert remaining_ids(ten_days) == set()


def test_cleanup_cutoff_is_exclusive(job, clock):
    on_cutoff = aged(execution_of(job, status=S.SUCCESS), 30)
    just_past = aged(execution_of(job, status=S.SUCCESS), 30 + 1 / 86400)
    assert executions_cleanup(older_than_days=30) == 1
    assert remaining_ids(on_cutoff, just_past) == {on_cutoff.pk}


def test_cleanup_with_zero_days_deletes_every_finished_run(job, clock):
    done = [execution_of(job, status=S.SUCCESS), execution_of(job, status=S.FAILED)]
    running = execution_of(job, status=S.RUNNING)
    clock.advance(seconds=1)
    assert executions_cleanup(older_than_days=0) == 2
    assert remaining_ids(*done, running) == {running.pk}


def test_cleanup_never_touches_pending_or_running_runs(job, clock):
    unfinished = [aged(execution_of(job, status=s), 3650) for s in (S.PENDING, S.RUNNING)]
    assert executions_cleanup(older_than_days=0) == 0
    assert remaining_ids(*unfinished) == {e.pk for e in unfinished}


def test_cleanup_includes_deleted_jobs_history(job, clock):
    old = aged(execution_of(job, status=S.SUCCESS), 60)
    job_delete(job)
    assert executions_cleanup(older_than_days=30) == 1
    assert remaining_ids(old) == set()


def test_cleanup_dry_run_counts_without_deleting(job, clock):
    old = [aged(execution_of(job, status=S.SUCCESS), 40) for _ in range(3)]
    aged(execution_of(job, status=S.RUNNING), 40)
    assert executions_cleanup(older_than_days=30, dry_run=True) == 3
    assert remaining_ids(*old) == {e.pk for e in old}


@pytest.mark.parametrize("count, batch_size", [(5, 2), (4, 2), (3, 1000), (1, 1)])
def test_cleanup_deletes_in_batches(job, clock, count, batch_size):
    old = [aged(execution_of(job, status=S.SUCCESS), 40) for _ in range(count)]
    keep = aged(execution_of(job, status=S.SUCCESS), 1)
    assert executions_cleanup(older_than_days=30, batch_size=batch_size) == count
    assert remaining_ids(*old, keep) == {keep.pk}


def test_each_batch_resumes_where_the_last_stopped(job, clock):
    """The backend's walk: at most batch_size rows per call, each call after the last row walked,
    and None once the rows before the cutoff are all walked."""
    old = [aged(execution_of(job, status=S.SUCCESS), 40 - n / 10) for n in range(5)]
    cutoff = T0 - timedelta(days=30)
    deleted, after = backend().executions_delete_old(cutoff=cutoff, after=None, batch_size=2)
    assert deleted == 2 and after is not None
    assert remaining_ids(*old) == {e.pk for e in old[2:]}
    deleted, after = backend().executions_delete_old(cutoff=cutoff, after=after, batch_size=2)
    assert deleted == 2 and after is not None
    deleted, after = backend().executions_delete_old(cutoff=cutoff, after=after, batch_size=2)
    assert deleted == 1 and after is None
    assert remaining_ids(*old) == set()


def test_cleanup_walks_past_old_runs_in_progress_and_keeps_them(job, clock):
    """A batch of old rows that are all still running must not end the walk: the finished rows
    after them go too."""
    stuck = [aged(execution_of(job, status=S.RUNNING), 50 - n / 10) for n in range(3)]
    old = [aged(execution_of(job, status=S.FAILED), 40 - n / 10) for n in range(3)]
    assert executions_cleanup(older_than_days=30, batch_size=2) == 3
    assert remaining_ids(*stuck, *old) == {e.pk for e in stuck}


def test_cleanup_applies_history_limits_of_many_jobs(clock):
    """Jobs with a limit are ranked a chunk at a time; each keeps its newest N finished runs."""
    from scheduler.services import retention

    jobs = [IntervalJobFactory(history_limit=2) for _ in range(3)]
    unlimited = IntervalJobFactory()
    kept, gone = set(), set()
    for job in [*jobs, unlimited]:
        runs = [aged(execution_of(job, status=S.SUCCESS), days=5 - n) for n in range(4)]
        running = aged(execution_of(job, status=S.RUNNING), days=6)
        if job is unlimited:
            kept |= {r.pk for r in runs}
        else:
            kept |= {runs[2].pk, runs[3].pk}
            gone |= {runs[0].pk, runs[1].pk}
        kept.add(running.pk)
    original = retention.LIMITED_JOBS_PER_CHUNK
    retention.LIMITED_JOBS_PER_CHUNK = 2
    try:
        assert executions_cleanup(older_than_days=30, dry_run=True) == len(gone)
        assert executions_cleanup(older_than_days=30, batch_size=3) == len(gone)
    finally:
        retention.LIMITED_JOBS_PER_CHUNK = original
    remaining = set(JobExecution.objects.filter(pk__in=kept | gone).values_list("pk", flat=True))
    assert remaining == kept


def test_cleanup_refuses_a_negative_age():
    with pytest.raises(ValueError):
        executions_cleanup(older_than_days=-1)

"""cleanup_executions and the retention service: age rule, per-job cap, batches, never unfinished."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from scheduler.models import ExecutionStatus, JobExecution
from scheduler.services.retention import executions_cleanup, executions_cleanup_over_limit
from tests.factories import ExecutionFactory, IntervalJobFactory

S = ExecutionStatus


def make(job, status, age_days=0.0, minutes_back=0):
    """An execution of `job` in `status`, created `age_days` ago (minus `minutes_back` minutes)."""
    execution = ExecutionFactory(
        job=job, status=status, scheduled_time=timezone.now() - timedelta(days=age_days, minutes=minutes_back)
    )
    created = timezone.now() - timedelta(days=age_days, minutes=minutes_back)
    JobExecution.objects.filter(pk=execution.pk).update(created_at=created)
    return execution.pk


def run(*args):
    out = StringIO()
    call_command("cleanup_executions", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def history(db):
    job = IntervalJobFactory()
    old_finished = [
        make(job, status, age_days=40, minutes_back=i)
        for i, status in enumerate((S.SUCCESS, S.FAILED, S.SKIPPED, S.MISSED))
    ]
    old_unfinished = [make(job, S.PENDING, age_days=400), make(job, S.RUNNING, age_days=400, minutes_back=1)]
    recent = [make(job, S.SUCCESS, age_days=1), make(job, S.FAILED, age_days=2)]
    return job, old_finished, old_unfinished, recent


def remaining():
    return set(JobExecution.objects.values_list("pk", flat=True))


def test_deletes_old_finished_only(history):
    job, old_finished, old_unfinished, recent = history
    output = run("--older-than", "30")
    assert "Deleted 4 finished executions older than 30 days" in output
    assert remaining() == {*old_unfinished, *recent}


def test_dry_run_counts_and_deletes_nothing(history):
    before = remaining()
    output = run("--older-than", "30", "--dry-run")
    assert "Dry run: would delete 4 " in output
    assert remaining() == before


def test_default_comes_from_the_setting(history, settings):
    settings.SCHEDULER_HISTORY_RETENTION_DAYS = 2
    job, old_finished, old_unfinished, recent = history
    assert "older than 2 days" in run()
    assert remaining() == {*old_unfinished, recent[0]}


def test_zero_days_deletes_every_finished_but_never_pending_or_running(history):
    job, old_finished, old_unfinished, recent = history
    fresh_pending = make(job, S.PENDING)
    fresh_running = make(job, S.RUNNING, minutes_back=1)
    run("--older-than", "0")
    assert remaining() == {*old_unfinished, fresh_pending, fresh_running}


def test_small_batches_delete_everything_due(history):
    job, old_finished, old_unfinished, recent = history
    assert executions_cleanup(older_than_days=30, batch_size=3) == 4
    assert remaining() == {*old_unfinished, *recent}


def test_history_limit_keeps_newest_finished_per_job(db):
    capped = IntervalJobFactory(history_limit=2)
    uncapped = IntervalJobFactory()
    finished = [make(capped, S.SUCCESS, minutes_back=m) for m in (1, 2, 3, 4, 5)]  # newest first
    unfinished = [make(capped, S.PENDING, minutes_back=10), make(capped, S.RUNNING, minutes_back=11)]
    others = [make(uncapped, S.FAILED, minutes_back=m) for m in (1, 2, 3, 4)]

    assert executions_cleanup_over_limit(dry_run=True) == 3
    assert executions_cleanup_over_limit(batch_size=2) == 3
    # Pending and running runs neither count against the cap nor get deleted.
    assert remaining() == {*finished[:2], *unfinished, *others}


def test_one_cleanup_run_applies_age_and_cap_without_double_counting(db):
    capped = IntervalJobFactory(history_limit=2)
    recent = [make(capped, S.SUCCESS, minutes_back=m) for m in (1, 2, 3)]
    for m in (1, 2):
        make(capped, S.FAILED, age_days=60, minutes_back=m)
    pending_old = make(capped, S.PENDING, age_days=90)

    output = run("--older-than", "30", "--dry-run")
    assert "would delete 3 " in output  # two old ones, plus one recent past the cap
    assert executions_cleanup(older_than_days=30) == 3
    assert remaining() == {*recent[:2], pending_old}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--older-than", "-1"], "--older-than must be 0 or more days; got -1"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
    ],
)
def test_bad_arguments_exit_2(db, args, message):
    with pytest.raises(CommandError) as exc:
        run(*args)
    assert exc.value.returncode == 2
    assert message in str(exc.value)


def test_non_number_is_refused(db):
    with pytest.raises(CommandError, match="invalid int value"):
        run("--older-than", "thirty")

"""Tests of the shipped task functions: each does what its description says."""

from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler import registry
from scheduler.models import ExecutionStatus, JobExecution
from tasks.functions import TaskFunctionFailure
from tests.factories import ExecutionFactory


def run(name, *args, **kwargs):
    """Call a shipped function the way the engine does: through the registry."""
    return registry.get(f"tasks.functions.{name}").func(*args, **kwargs)


def test_noop_does_nothing():
    assert run("noop") is None
    assert run("noop", 1, 2, x=3) is None


def test_echo_returns_its_arguments():
    assert run("echo", 1, "two", None, flag=True, nested={"a": [1]}) == {
        "args": [1, "two", None],
        "kwargs": {"flag": True, "nested": {"a": [1]}},
    }
    assert run("echo") == {"args": [], "kwargs": {}}


@pytest.fixture
def sleeps(monkeypatch):
    """The seconds each sleep was asked for, without sleeping."""
    asked = []
    # The shipped sleeps wait through their run's context, so that a cancel or timeout stops them.
    monkeypatch.setattr(registry.RunContext, "sleep", lambda context, seconds: asked.append(seconds))
    return asked


def test_sleep_sleeps_the_given_seconds(sleeps):
    assert run("sleep", seconds=2.5) == {"slept": 2.5}
    assert run("sleep", seconds="3") == {"slept": 3.0}  # kwargs from JSON may be strings
    assert run("sleep") == {"slept": 1.0}
    assert sleeps == [2.5, 3.0, 1.0]


def test_sleep_offloaded_runs_on_celery_and_defaults_to_five_seconds(sleeps):
    spec = registry.get("tasks.functions.sleep_offloaded")
    assert spec.offload is True and spec.timeout == 3600
    assert spec.func() == {"slept": 5.0}
    assert sleeps == [5.0]


def test_inline_functions_are_not_offloaded():
    for name in ("noop", "echo", "sleep", "fail", "cleanup_executions"):
        assert registry.get(f"tasks.functions.{name}").offload is False, name


def test_fail_raises_with_the_given_message():
    with pytest.raises(TaskFunctionFailure, match="^disk on fire$"):
        run("fail", message="disk on fire")
    with pytest.raises(TaskFunctionFailure, match="failed on purpose"):
        run("fail")


@pytest.mark.parametrize("name", ["noop", "echo", "sleep", "sleep_offloaded", "cleanup_executions"])
def test_shipped_functions_tolerate_unexpected_keyword_arguments(name, sleeps, db):
    extra = {"seconds": 0} if name.startswith("sleep") else {}
    run(name, unexpected="ignored", **extra)


def test_cleanup_executions_deletes_old_finished_history(db, settings, interval_job):
    settings.SCHEDULER_HISTORY_RETENTION_DAYS = 10
    now = timezone.now()
    old = ExecutionFactory(job=interval_job, status=ExecutionStatus.SUCCESS, scheduled_time=now - timedelta(days=20))
    recent = ExecutionFactory(job=interval_job, status=ExecutionStatus.FAILED, scheduled_time=now - timedelta(days=5))
    running = ExecutionFactory(
        job=interval_job, status=ExecutionStatus.RUNNING, scheduled_time=now - timedelta(days=30)
    )
    JobExecution.objects.filter(pk__in=[old.pk, running.pk]).update(created_at=now - timedelta(days=20))
    JobExecution.objects.filter(pk=recent.pk).update(created_at=now - timedelta(days=5))

    assert run("cleanup_executions", older_than_days=30) == {"deleted": 0}
    assert run("cleanup_executions") == {"deleted": 1}  # the retention setting
    assert set(JobExecution.objects.values_list("pk", flat=True)) == {recent.pk, running.pk}
    assert run("cleanup_executions", older_than_days=0) == {"deleted": 1}
    assert list(JobExecution.objects.values_list("pk", flat=True)) == [running.pk]

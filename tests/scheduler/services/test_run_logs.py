"""The logs of each run: what a task function logs is kept with its execution, bounded, per thread."""

import logging
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler import registry
from scheduler.engine.recorder import BatchRecorder
from scheduler.models import ExecutionLog, ExecutionStatus, JobExecution, ScheduledJob, TaskFunction
from scheduler.services.claims import runs_claim
from scheduler.services.run_logs import RunLog, run_logs_start, run_logs_stop
from scheduler.services.runs import execution_run, run_target_execute
from tests.factories import IntervalJobFactory

pytestmark = pytest.mark.django_db

INSTANCE = "run-logs-instance"
CHATTY = "tests.scheduler.services.test_run_logs.chatty"
app_logger = logging.getLogger("myapp.reports")


def chatty(lines=3, fail=False, **kwargs):
    logging.getLogger("myapp.debugging").debug("not kept at the default level")
    for number in range(lines):
        app_logger.info("line %d of %d", number + 1, lines)
    logging.getLogger().warning("from the root logger")
    # Another thread's records are not this run's.
    other = threading.Thread(target=lambda: app_logger.error("from a thread of its own"))
    other.start()
    other.join()
    try:
        {}["missing"]
    except KeyError:
        app_logger.exception("caught and logged")
    if fail:
        raise RuntimeError("gave up")
    return "done"


@pytest.fixture(autouse=True)
def chatty_function(monkeypatch, db):
    ScheduledJob.objects.update(is_enabled=False, next_run_time=None)
    spec = registry.TaskSpec(name=CHATTY, func=chatty, description="", offload=False, queue="celery", timeout=None)
    monkeypatch.setitem(registry._registry, CHATTY, spec)
    return TaskFunction.objects.create(name=CHATTY)


def claimed(task_function, **kwargs):
    job = IntervalJobFactory(task_function=task_function, kwargs=kwargs)
    now = timezone.now()
    ScheduledJob.objects.filter(pk=job.pk).update(next_run_time=now - timedelta(seconds=1))
    [run] = runs_claim(instance_id=INSTANCE, now=now)
    return run


def messages(execution_id):
    return [
        (r["level"], r["logger"], r["message"].splitlines()[0])
        for r in ExecutionLog.objects.get(pk=execution_id).records
    ]


def test_a_run_keeps_what_its_function_logged_at_info_and_above(chatty_function):
    run = claimed(chatty_function, lines=2)
    execution = execution_run(run.execution_id, instance_id=INSTANCE)
    assert execution.status == ExecutionStatus.SUCCESS
    assert messages(run.execution_id) == [
        ("INFO", "myapp.reports", "line 1 of 2"),
        ("INFO", "myapp.reports", "line 2 of 2"),
        ("WARNING", "root", "from the root logger"),
        ("ERROR", "myapp.reports", "caught and logged"),
    ]
    record = ExecutionLog.objects.get(pk=run.execution_id).records[-1]
    assert "KeyError: 'missing'" in record["message"] and record["at"].endswith("+00:00")
    assert ExecutionLog.objects.get(pk=run.execution_id).cut == 0


def test_a_failed_run_keeps_its_logs_and_a_run_that_logs_nothing_stores_nothing(chatty_function):
    run = claimed(chatty_function, lines=1, fail=True)
    assert execution_run(run.execution_id, instance_id=INSTANCE).status == ExecutionStatus.FAILED
    assert messages(run.execution_id)[0] == ("INFO", "myapp.reports", "line 1 of 1")
    quiet = claimed(TaskFunction.objects.get(name="tasks.functions.noop"))
    execution_run(quiet.execution_id, instance_id=INSTANCE)
    assert not ExecutionLog.objects.filter(pk=quiet.execution_id).exists()


def test_the_engine_recorder_writes_logs_with_the_runs_end(chatty_function):
    """Inline runs: the records wait in memory and go with the batch that records the end."""
    recorder = BatchRecorder(interval=60)  # never flushes on its own: the test flushes
    run = claimed(chatty_function, lines=1)
    run_target_execute(run.target, instance_id=INSTANCE, recorder=recorder)
    assert not ExecutionLog.objects.filter(pk=run.execution_id).exists()
    recorder.flush()
    assert JobExecution.objects.get(pk=run.execution_id).status == ExecutionStatus.SUCCESS
    assert messages(run.execution_id)[0] == ("INFO", "myapp.reports", "line 1 of 1")


def test_the_level_is_a_setting(chatty_function, settings):
    settings.SCHEDULER_RUN_LOG_LEVEL = "ERROR"
    run = claimed(chatty_function, lines=2)
    execution_run(run.execution_id, instance_id=INSTANCE)
    assert [m[2] for m in messages(run.execution_id)] == ["caught and logged"]


def test_a_long_log_keeps_its_first_and_last_records_with_a_marker_between(chatty_function, settings):
    settings.SCHEDULER_RUN_LOG_MAX_RECORDS = 10
    run = claimed(chatty_function, lines=100)
    execution_run(run.execution_id, instance_id=INSTANCE)
    log = ExecutionLog.objects.get(pk=run.execution_id)
    texts = [r["message"].splitlines()[0] for r in log.records]
    assert texts[:5] == [f"line {n} of 100" for n in range(1, 6)]
    assert texts[-5:] == [
        "line 98 of 100",
        "line 99 of 100",
        "line 100 of 100",
        "from the root logger",
        "caught and logged",
    ]
    marker = log.records[5]
    assert marker["cut"] == log.cut == 92  # 102 records: 100 lines, the root's and the caught one
    assert "92 log records" in marker["message"] and "SCHEDULER_RUN_LOG_MAX_RECORDS" in marker["message"]
    assert len(log.records) == 11


def test_the_character_budget_bounds_a_log_of_few_huge_records():
    log = RunLog(max_records=1000, max_chars=1000)
    for number in range(50):
        log.add({"message": str(number)}, 100)
    records = log.records()
    assert [r["message"] for r in records[:5]] == ["0", "1", "2", "3", "4"]
    assert records[5]["cut"] == 40 and [r["message"] for r in records[6:]] == ["45", "46", "47", "48", "49"]


def test_capture_is_per_thread_and_ends_with_the_run():
    run_logs_start()
    app_logger.info("kept")
    seen = []
    worker = threading.Thread(target=lambda: seen.append(run_logs_stop()))
    worker.start()
    worker.join()
    assert seen == [None]  # that thread was capturing nothing
    records, cut = run_logs_stop()
    assert [r["message"] for r in records] == ["kept"] and cut == 0
    app_logger.info("after the run")
    assert run_logs_stop() is None

"""The batch recorder: every run start and end reaches the database, whatever the interleaving."""

import threading
import time
from datetime import timedelta

from django.utils import timezone

from scheduler.engine.recorder import BatchRecorder, deferring
from scheduler.models import ExecutionStatus, JobExecution, JobLease
from scheduler.services.executions import RunEnded
from tests.factories import ExecutionFactory, IntervalJobFactory
from tests.scheduler.engine.conftest import wait_until

RUNS = 2000
THREADS = 8
ROUND = 40


def test_no_run_is_lost_when_many_threads_record_during_flushes(engine_db):
    job = IntervalJobFactory()
    now = timezone.now()
    executions = [
        ExecutionFactory.build(job=job, scheduled_time=now - timedelta(microseconds=i), instance_id="me")
        for i in range(RUNS)
    ]
    executions = JobExecution.objects.bulk_create(executions)
    JobLease.objects.bulk_create(
        [
            JobLease(job=job, execution=e, locked_by="me", locked_at=now, expires_at=now + timedelta(hours=1))
            for e in executions
        ]
    )
    # A tiny batch and interval so that flushes constantly interleave with the threads' writes.
    recorder = BatchRecorder(interval=0.001, max_batch=7)
    recorder.start()

    def work(share):
        for execution in share:
            started = timezone.now()
            recorder.run_started(execution, instance_id="me", hostname="here", celery_task_id="", started_at=started)
            recorder.run_ended(
                execution,
                RunEnded(execution.pk, ExecutionStatus.SUCCESS, started, timezone.now(), result={"n": execution.pk}),
            )

    # In rounds, each waited for without a stop (whose last flush writes whatever is left) and with
    # no later run to wake the recorder: a wake-up lost between a flush and a thread's write would
    # leave a round's last runs unwritten.
    for first in range(0, RUNS, ROUND):
        batch = executions[first : first + ROUND]
        threads = [threading.Thread(target=work, args=(batch[i::THREADS],)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        written = first + len(batch)
        wait_until(
            lambda written=written: JobExecution.objects.filter(status=ExecutionStatus.SUCCESS).count() == written,
            30,
            f"runs {first + 1}-{written} to be written",
            interval=0.01,
        )
    recorder.stop()

    assert JobExecution.objects.filter(status=ExecutionStatus.SUCCESS).count() == RUNS
    assert not JobLease.objects.exists()
    sample = JobExecution.objects.get(pk=executions[0].pk)
    assert sample.hostname == "here" and sample.result == {"n": sample.pk} and sample.duration_ms is not None


def test_an_end_the_database_no_longer_takes_is_said_in_the_log_and_changes_nothing(engine_db, caplog):
    job = IntervalJobFactory()
    reaped = ExecutionFactory(
        job=job, status=ExecutionStatus.FAILED, error_message="lease expired: ...", instance_id="me"
    )
    recorder = BatchRecorder()
    recorder.start()
    now = timezone.now()
    recorder.run_ended(reaped, RunEnded(reaped.pk, ExecutionStatus.SUCCESS, now, now, result="late"))
    recorder.stop()
    reaped.refresh_from_db()
    assert reaped.status == ExecutionStatus.FAILED and reaped.result is None
    assert f"Execution {reaped.pk} ended success here, but its row had moved on" in caplog.text


def test_deferring_waits_while_busy_but_never_longer_than_its_limit_nor_past_a_stop():
    stop = threading.Event()
    began = time.monotonic()
    deferring(lambda: True, stop, longest=0.3)
    assert 0.3 <= time.monotonic() - began < 5, "busy all along: it gives up at its limit"
    began = time.monotonic()
    deferring(lambda: False, stop, longest=30)
    assert time.monotonic() - began < 1, "not busy: no wait"
    stop.set()
    began = time.monotonic()
    deferring(lambda: True, stop, longest=30)
    assert time.monotonic() - began < 1, "a stop ends the wait"

"""The logs of inline runs in a real `runscheduler`: captured in its worker threads, written with the runs' ends."""

from scheduler.models import ExecutionLog, ExecutionStatus, JobExecution, TaskFunction
from tests.factories import IntervalJobFactory
from tests.scheduler.engine.conftest import wait_until


def test_inline_runs_keep_what_their_function_logged(start_scheduler):
    echo = TaskFunction.objects.get(name="tasks.functions.echo")
    jobs = [
        IntervalJobFactory(interval_seconds=1, interval_minutes=None, task_function=echo, args=[n]) for n in range(5)
    ]
    start_scheduler()
    wait_until(
        lambda: all(JobExecution.objects.filter(job=j, status=ExecutionStatus.SUCCESS).count() >= 2 for j in jobs),
        30,
        "two runs of each job",
    )
    for job in jobs:
        for execution in JobExecution.objects.filter(job=job, status=ExecutionStatus.SUCCESS):
            [record] = ExecutionLog.objects.get(pk=execution.pk).records  # written with the run's end
            assert record["message"] == f"echo: args={job.args!r} kwargs={{}}"

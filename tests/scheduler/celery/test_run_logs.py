"""The logs of offloaded runs: what the function logs on a real Celery worker is kept with its execution."""

from scheduler.models import ExecutionLog, ExecutionStatus, JobExecution, TaskFunction
from scheduler.services.jobs import job_trigger
from tests.factories import IntervalJobFactory
from tests.scheduler.engine.conftest import wait_until


def test_an_offloaded_runs_logs_are_kept_success_or_failure(start_scheduler, start_worker, celery_env, user):
    start_worker()
    start_scheduler(env=celery_env)
    function = TaskFunction.objects.get(name="tests.task_functions.log_offloaded")
    job = IntervalJobFactory(interval_hours=1, interval_minutes=None, task_function=function, kwargs={"lines": 3})
    ok = job_trigger(job, user=user)
    wait_until(lambda: JobExecution.objects.get(pk=ok.pk).status == ExecutionStatus.SUCCESS, 30, "offloaded run")
    records = ExecutionLog.objects.get(pk=ok.pk).records
    assert [(r["logger"], r["message"]) for r in records] == [("tests.worker", f"worker line {n}") for n in (1, 2, 3)]

    job.kwargs = {"lines": 1, "fail": True}
    job.save(update_fields=["kwargs"])
    bad = job_trigger(job, user=user)
    wait_until(lambda: JobExecution.objects.get(pk=bad.pk).status == ExecutionStatus.FAILED, 30, "failing run")
    assert [r["message"] for r in ExecutionLog.objects.get(pk=bad.pk).records] == ["worker line 1"]

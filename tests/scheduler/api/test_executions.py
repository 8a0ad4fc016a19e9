"""GET /executions/{id}: one run with its logs, arguments, result, error, traceback and timeline."""

from datetime import timedelta

from django.utils import timezone

from scheduler.models import JobExecution, ScheduledJob, TaskFunction
from scheduler.services.claims import runs_claim
from scheduler.services.jobs import job_delete, job_trigger
from scheduler.services.runs import execution_run
from tests.factories import ExecutionFactory, IntervalJobFactory
from tests.scheduler.api.conftest import API, client_for, user_with


def execution_url(execution_id):
    return f"{API}/executions/{execution_id}"


def test_a_finished_run_with_its_logs_arguments_and_timeline(client, superuser):
    echo = TaskFunction.objects.get(name="tasks.functions.echo")
    job = IntervalJobFactory(task_function=echo, args=[1], kwargs={"my_key": "v"})
    ScheduledJob.objects.exclude(pk=job.pk).update(is_enabled=False, next_run_time=None)
    execution = job_trigger(job, user=superuser)
    runs_claim(instance_id="api-test", now=timezone.now())
    execution_run(execution.pk, instance_id="api-test")

    body = client.get(execution_url(execution.pk)).json()
    assert body["status"] == "success"
    assert (body["jobId"], body["jobName"], body["taskFunctionName"]) == (job.pk, job.name, echo.name)
    assert body["args"] == [1] and body["kwargs"] == {"my_key": "v"}
    assert body["result"] == {"args": [1], "kwargs": {"my_key": "v"}}
    assert body["triggeredBy"] == superuser.username
    assert [step["status"] for step in body["timeline"]] == ["pending", "running", "success"]
    [record] = body["logs"]
    assert record["level"] == "INFO" and record["logger"] == "tasks.functions"
    assert record["message"] == "echo: args=[1] kwargs={'my_key': 'v'}"
    assert body["logsCut"] == 0


def test_a_failed_and_a_skipped_run(client):
    job = IntervalJobFactory(task_function=TaskFunction.objects.get(name="tasks.functions.fail"))
    failed = ExecutionFactory(job=job, status="pending", instance_id="x")
    execution_run(failed.pk, instance_id="x")
    body = client.get(execution_url(failed.pk)).json()
    assert body["status"] == "failed" and body["errorMessage"].startswith("TaskFunctionFailure")
    assert "Traceback" in body["traceback"] and body["logs"] == []
    skipped = ExecutionFactory(
        job=job, status="skipped", scheduled_time=timezone.now() - timedelta(minutes=1), finished_at=timezone.now()
    )
    assert [s["status"] for s in client.get(execution_url(skipped.pk)).json()["timeline"]] == ["skipped"]


def test_missing_deleted_job_and_permissions(client, superuser):
    job = IntervalJobFactory()
    execution = ExecutionFactory(job=job)
    job_delete(job, user=superuser)
    assert client.get(execution_url(execution.pk)).status_code == 200  # history stays readable
    assert client.get(execution_url(execution.pk + 99)).status_code == 404
    assert client.get(execution_url("x")).status_code == 404
    assert client.get(execution_url(2**70)).status_code == 404
    assert client_for(user_with("view_scheduledjob")).get(execution_url(execution.pk)).status_code == 200
    assert client_for(user_with("view_taskfunction")).get(execution_url(execution.pk)).status_code == 403
    assert JobExecution.objects.filter(pk=execution.pk).exists()


def test_a_run_triggered_with_other_arguments_shows_its_own(client, superuser):
    job = IntervalJobFactory(args=[1], kwargs={"a": 1})
    response = client.post(f"{API}/jobs/{job.pk}/action", {"action": "trigger", "args": [2], "kwargs": {"b": 2}})
    body = client.get(execution_url(response.json()["id"])).json()
    assert (body["args"], body["kwargs"]) == ([2], {"b": 2})  # the run's, not the job's

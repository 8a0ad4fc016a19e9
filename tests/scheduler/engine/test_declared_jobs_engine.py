"""Jobs declared in code reach the database when `runscheduler` starts, and run; restarts keep their state."""

import pytest
from django.db.models import Count

from scheduler.models import ExecutionStatus, JobExecution, ScheduledJob
from scheduler.services.jobs import job_pause
from tests.scheduler.engine.conftest import wait_until

DECLARING = {
    "SCHEDULER_TASK_MODULES": "tasks.functions,tests.scheduler.declared_sample_jobs",
    "TEST_DECLARED_JOB_COUNT": "2",
}
EVERY_SECOND = "declared every second"


def test_a_starting_scheduler_syncs_the_declared_jobs_runs_them_and_a_restart_keeps_their_state(start_scheduler):
    proc = start_scheduler(env=DECLARING)
    assert "Declared jobs in sync: 3 created" in proc.log()
    job = ScheduledJob.objects.get(name=EVERY_SECOND)
    assert job.managed_by == "tests.scheduler.declared_sample_jobs.declared_report"
    wait_until(
        lambda: JobExecution.objects.filter(job=job, status=ExecutionStatus.SUCCESS).count() >= 2, 20, "two runs"
    )
    assert JobExecution.objects.filter(job=job, status=ExecutionStatus.SUCCESS).first().result == "ran"
    assert proc.terminate() == 0, proc.log()

    job_pause(job, reason="paused between two deploys")
    nightly = ScheduledJob.objects.get(name="declared 000")
    again = start_scheduler(env=DECLARING)
    assert "Declared jobs in sync" not in again.log()  # nothing to change: nothing said
    job.refresh_from_db()
    assert (job.is_paused, job.pause_reason) == (True, "paused between two deploys")
    assert ScheduledJob.objects.get(name="declared 000").next_run_time == nightly.next_run_time
    assert again.terminate() == 0, again.log()


@pytest.mark.postgres
def test_schedulers_starting_together_create_each_declared_job_once(start_scheduler):
    env = {**DECLARING, "TEST_DECLARED_JOB_COUNT": "60"}
    procs = [start_scheduler(env=env, wait=False) for _ in range(3)]
    for proc in procs:
        proc.wait_started()
    counts = ScheduledJob.objects.filter(name__startswith="declared ").values("name").annotate(n=Count("pk"))
    assert len(counts) == 61 and {row["n"] for row in counts} == {1}
    assert sum("Declared jobs in sync: 61 created" in proc.log() for proc in procs) == 1
    job = ScheduledJob.objects.get(name=EVERY_SECOND)
    wait_until(lambda: JobExecution.objects.filter(job=job).count() >= 3, 20, "runs of the declared job")
    times = list(JobExecution.objects.filter(job=job).values_list("scheduled_time", flat=True))
    assert len(times) == len(set(times))
    for proc in procs:
        assert proc.terminate() == 0, proc.log()

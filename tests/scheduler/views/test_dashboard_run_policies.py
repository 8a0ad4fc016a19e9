"""The dashboard's side of the run policies: a cancel button per unfinished run, the "cancel
requested" badge, attempt labels, the job page's run policies row, and the cancel action."""

import re
from pathlib import Path

import pytest
from django.conf import settings

from scheduler.enums import ExecutionStatus, ExecutionTrigger, OverlapPolicy
from scheduler.models import JobExecution, ScheduledJob, TaskFunction
from scheduler.services.cancels import execution_cancel
from scheduler.services.claims import runs_claim
from scheduler.services.jobs import job_trigger
from tests.factories import ExecutionFactory, IntervalJobFactory
from tests.scheduler.views.test_dashboard import action_url, user_with

pytestmark = pytest.mark.django_db

S = ExecutionStatus


@pytest.fixture(autouse=True)
def only_test_jobs(db):
    ScheduledJob.objects.update(is_enabled=False, next_run_time=None)


@pytest.fixture
def canceller(client, db):
    client.force_login(user_with("view_scheduledjob", "cancel_jobexecution"))
    return client


def job_page(client, job) -> str:
    response = client.get(f"/scheduler/jobs/{job.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def row_of(page: str, execution) -> str:
    match = re.search(rf'<tr class="row-[a-z_]+" data-execution="{execution.pk}">(.*?)</tr>', page, re.S)
    assert match, f"no row for execution {execution.pk}"
    return match.group(1)


def test_unfinished_runs_have_a_cancel_button_and_finished_ones_none(canceller):
    job = IntervalJobFactory()
    unfinished = [ExecutionFactory(job=job, status=status) for status in (S.PENDING, S.WAITING, S.RUNNING)]
    finished = [ExecutionFactory(job=job, status=status) for status in (S.SUCCESS, S.FAILED, S.TIMED_OUT, S.CANCELLED)]

    page = job_page(canceller, job)

    for execution in unfinished:
        assert f'data-testid="cancel-{execution.pk}"' in row_of(page, execution)
    for execution in finished:
        assert 'data-testid="cancel-' not in row_of(page, execution)


def test_without_the_cancel_permission_there_is_no_cancel_button(client):
    client.force_login(user_with("view_scheduledjob", "change_scheduledjob", "trigger_scheduledjob"))
    job = IntervalJobFactory()
    execution = ExecutionFactory(job=job, status=S.RUNNING)

    assert 'data-testid="cancel-' not in job_page(client, job)
    assert 'data-testid="cancel-' not in client.get("/scheduler/").content.decode()
    assert client.post(action_url(job, "cancel"), {"execution_id": execution.pk}).status_code == 403
    assert JobExecution.objects.get(pk=execution.pk).cancel_requested_at is None


def test_a_run_asked_to_stop_shows_cancel_requested_instead_of_the_button(canceller):
    job = IntervalJobFactory()
    execution = ExecutionFactory(job=job, status=S.RUNNING, instance_id="host-a")
    execution_cancel(execution)

    row = row_of(job_page(canceller, job), execution)

    assert f'data-testid="cancel-requested-{execution.pk}"' in row and "cancel requested" in row
    assert f'data-testid="cancel-{execution.pk}"' not in row


def test_retries_show_their_attempt_and_the_run_they_retry(canceller):
    job = IntervalJobFactory()
    first = ExecutionFactory(job=job, status=S.FAILED)
    retry = ExecutionFactory(job=job, status=S.PENDING, trigger=ExecutionTrigger.RETRY, attempt=2, retry_of=first)

    page = job_page(canceller, job)

    assert f"attempt 2, retry of #{first.pk}" in row_of(page, retry)
    assert "attempt" not in row_of(page, first)


def test_the_job_page_lists_the_run_policies(canceller):
    job = IntervalJobFactory(
        overlap_policy=OverlapPolicy.BUFFER_ALL, timeout=30, max_retries=3, retry_backoff=5, pause_after_failures=4
    )
    defaults = IntervalJobFactory(task_function=TaskFunction.objects.get(name="tasks.functions.sleep_offloaded"))

    policies = re.search(r'data-testid="run-policies">(.*?)</dd>', job_page(canceller, job), re.S).group(1)
    default_policies = re.search(r'data-testid="run-policies">(.*?)</dd>', job_page(canceller, defaults), re.S)

    assert "buffer all" in policies and "timeout 30 s" in policies
    assert "retries 3 (backoff from 5 s)" in policies and "paused after 4 consecutive failures" in policies
    assert "overlap skip" in default_policies.group(1)
    assert "timeout 3600 s (the task function's)" in default_policies.group(1)
    assert "retries 0" in default_policies.group(1)


def test_cancel_from_the_page_script_answers_in_json(canceller):
    job = IntervalJobFactory(overlap_policy=OverlapPolicy.BUFFER_ONE)
    claimed = job_trigger(job)
    runs_claim(instance_id="dash-test")
    waiting = job_trigger(job)
    runs_claim(instance_id="dash-test")

    stopped = canceller.post(action_url(job, "cancel"), {"execution_id": claimed.pk}, HTTP_ACCEPT="application/json")
    cancelled = canceller.post(action_url(job, "cancel"), {"execution_id": waiting.pk}, HTTP_ACCEPT="application/json")

    assert stopped.status_code == 200
    assert stopped.json() == {
        "ok": True,
        "message": f"Asked execution #{claimed.pk} of {job.name!r} to stop: it ends cancelled once it has.",
    }
    assert cancelled.json() == {
        "ok": True,
        "message": f"Cancelled execution #{waiting.pk} of {job.name!r}: it will not start.",
    }
    assert JobExecution.objects.get(pk=waiting.pk).status == S.CANCELLED
    assert JobExecution.objects.get(pk=claimed.pk).cancel_pending


def test_cancel_without_javascript_redirects_back_with_the_message(canceller):
    job = IntervalJobFactory()
    execution = job_trigger(job)
    page = f"/scheduler/jobs/{job.pk}/"

    response = canceller.post(action_url(job, "cancel"), {"execution_id": execution.pk, "next": page})

    assert response.status_code == 302 and response["Location"] == page
    assert f"Cancelled execution #{execution.pk}" in canceller.get(page).content.decode()


@pytest.mark.parametrize("value", ["", "abc", "-1", "1.5", "9" * 30, "\u00b2", "\u0663", "١٢"])
def test_a_bad_execution_id_is_a_400_not_a_500(canceller, value):
    job = IntervalJobFactory()

    response = canceller.post(action_url(job, "cancel"), {"execution_id": value}, HTTP_ACCEPT="application/json")

    assert response.status_code == 400, response.content
    assert response.json()["ok"] is False


def test_cancel_of_a_finished_or_another_jobs_run_is_refused_with_the_reason(canceller):
    job, other = IntervalJobFactory(), IntervalJobFactory()
    finished = ExecutionFactory(job=job, status=S.SUCCESS)
    elsewhere = ExecutionFactory(job=other, status=S.PENDING)

    refused = canceller.post(action_url(job, "cancel"), {"execution_id": finished.pk}, HTTP_ACCEPT="application/json")
    foreign = canceller.post(action_url(job, "cancel"), {"execution_id": elsewhere.pk}, HTTP_ACCEPT="application/json")

    assert refused.status_code == 400 and "only a pending, waiting or running run" in refused.json()["message"]
    assert foreign.status_code == 400 and "has no run with execution id" in foreign.json()["message"]
    assert JobExecution.objects.get(pk=elsewhere.pk).status == S.PENDING


def test_the_runs_chart_counts_waiting_timed_out_and_cancelled_runs(canceller):
    job = IntervalJobFactory()
    for status in (S.SUCCESS, S.WAITING, S.TIMED_OUT, S.CANCELLED):
        ExecutionFactory(job=job, status=status)

    page = canceller.get("/scheduler/").content.decode()
    chart = re.search(r'<figure class="chart" id="runs-chart">(.*?)</figure>', page, re.S).group(1)

    # Ended runs by their end, runs still in progress (the waiting one) in the hour they were created.
    assert "(4 in all)" in chart
    for status in ("waiting", "timed_out", "cancelled"):
        assert re.search(rf'<rect class="fill-{status}"', chart), f"no bar segment for {status}"
        assert f"{status} <b>1</b>" in chart, f"no legend entry for {status}"


def test_every_status_a_chart_draws_has_a_colour():
    """A bar whose class has no fill rule is drawn black (the SVG default)."""
    css = (Path(settings.BASE_DIR) / "scheduler/static/scheduler/dashboard.css").read_text()
    for status in ExecutionStatus.values:
        assert re.search(rf"\.fill-{status} \{{ fill: ", css), f"no fill colour for {status}"

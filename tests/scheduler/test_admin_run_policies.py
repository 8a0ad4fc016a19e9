"""The admin's side of the run policies: the "Run policies" fieldset of the job form (validated by
the services) and the executions list's cancel action and status."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from scheduler.enums import ExecutionStatus, OverlapPolicy
from scheduler.models import JobExecution, ScheduledJob
from scheduler.services.cancels import execution_cancel
from tests.factories import ExecutionFactory, IntervalJobFactory, UserFactory
from tests.scheduler.test_admin import _form_data

S = ExecutionStatus
EXECUTIONS = "admin:scheduler_jobexecution_changelist"


def cancel_runs(client, *executions):
    return client.post(
        reverse(EXECUTIONS), {"action": "cancel_runs", "_selected_action": [e.pk for e in executions]}, follow=True
    )


def test_the_job_form_has_the_run_policies_fieldset(admin_client):
    page = admin_client.get(reverse("admin:scheduler_scheduledjob_add")).content.decode()

    assert "Run policies" in page
    for field in ("overlap_policy", "timeout", "max_retries", "retry_backoff", "pause_after_failures"):
        assert f'name="{field}"' in page, field


def test_the_job_form_saves_the_run_policies(admin_client):
    response = admin_client.post(
        reverse("admin:scheduler_scheduledjob_add"),
        _form_data(
            overlap_policy="terminate_other", timeout="45", max_retries="4", retry_backoff="3", pause_after_failures="2"
        ),
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    job = ScheduledJob.objects.get(name="nightly report")
    assert (job.overlap_policy, job.timeout, job.max_retries, job.retry_backoff, job.pause_after_failures) == (
        OverlapPolicy.TERMINATE_OTHER,
        45,
        4,
        3,
        2,
    )


@pytest.mark.parametrize(
    "field, value",
    [
        ("overlap_policy", "sometimes"),
        ("max_retries", "101"),
        ("timeout", "0"),
        ("pause_after_failures", "0"),
        ("retry_backoff", "-1"),
    ],
)
def test_bad_run_policies_are_shown_on_their_field(admin_client, field, value):
    response = admin_client.post(reverse("admin:scheduler_scheduledjob_add"), _form_data(**{field: value}))

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not ScheduledJob.objects.filter(name="nightly report").exists()


def test_the_cancel_action_cancels_unfinished_runs_and_reports_the_finished_ones(admin_client, admin_user):
    job = IntervalJobFactory()
    waiting = ExecutionFactory(job=job, status=S.WAITING)
    running = ExecutionFactory(job=job, status=S.RUNNING, instance_id="host-a")
    finished = ExecutionFactory(job=job, status=S.SUCCESS)

    page = cancel_runs(admin_client, waiting, running, finished).content.decode()

    assert "Asked to cancel 2 runs." in page
    assert f"Execution {finished.pk}: Execution {finished.pk} is Success" in page
    waiting.refresh_from_db()
    running.refresh_from_db()
    assert (waiting.status, waiting.cancel_requested_by) == (S.CANCELLED, admin_user)
    assert running.status == S.RUNNING and running.cancel_pending
    assert JobExecution.objects.get(pk=finished.pk).status == S.SUCCESS


def test_the_executions_list_shows_cancel_requested_and_the_attempt(admin_client):
    running = ExecutionFactory(status=S.RUNNING, instance_id="host-a", attempt=3)
    execution_cancel(running)

    page = admin_client.get(reverse(EXECUTIONS)).content.decode()

    assert "Running (cancel requested)" in page
    assert '<td class="field-attempt">3</td>' in page


def test_the_cancel_action_needs_the_cancel_permission(client, db):
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_jobexecution"))
    client.force_login(staff)
    waiting = ExecutionFactory(status=S.WAITING)

    assert "cancel_runs" not in client.get(reverse(EXECUTIONS)).content.decode()
    cancel_runs(client, waiting)
    assert JobExecution.objects.get(pk=waiting.pk).status == S.WAITING

    staff.user_permissions.add(Permission.objects.get(codename="cancel_jobexecution"))
    assert "cancel_runs" in client.get(reverse(EXECUTIONS)).content.decode()
    cancel_runs(client, waiting)
    assert JobExecution.objects.get(pk=waiting.pk).status == S.CANCELLED

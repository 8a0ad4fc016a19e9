"""Cancelling runs from the job page in a real headless Chromium: a waiting run ends cancelled at
once; a running inline run shows "cancel requested" until it has stopped, then cancelled."""

import os
import threading

from django.db import connection

from scheduler.enums import ExecutionStatus, OverlapPolicy
from scheduler.models import JobExecution, TaskFunction
from scheduler.registry import run_cancel
from scheduler.services.cancels import cancels_requested
from scheduler.services.claims import runs_claim
from scheduler.services.instances import instance_register
from scheduler.services.jobs import job_trigger
from scheduler.services.runs import execution_run
from tests.factories import IntervalJobFactory, UserFactory
from tests.scheduler.engine.conftest import wait_until
from tests.scheduler.views.test_dashboard_browser import ARTIFACTS, browser_page, migrated_rows  # noqa: F401

INSTANCE = "browser-cancel-1"


def run_in_thread(execution_id) -> threading.Thread:
    """Run a claimed inline run as a scheduler's worker thread would."""

    def target():
        try:
            execution_run(execution_id, instance_id=INSTANCE)
        finally:
            connection.close()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_cancel_a_waiting_and_a_running_run_from_the_job_page(live_server, migrated_rows, browser_page):  # noqa: F811
    page, expect = browser_page
    UserFactory(username="operator", password="a-long-test-password", is_staff=True, is_superuser=True)
    job = IntervalJobFactory(
        name="Long report",
        interval_hours=1,
        interval_minutes=None,
        task_function=TaskFunction.objects.get(name="tasks.functions.sleep"),
        kwargs={"seconds": 60},
        overlap_policy=OverlapPolicy.BUFFER_ONE,
    )
    instance_register(instance_id=INSTANCE, hostname="ci", pid=os.getpid())
    running = job_trigger(job)
    runs_claim(instance_id=INSTANCE)
    thread = run_in_thread(running.pk)
    wait_until(lambda: JobExecution.objects.get(pk=running.pk).status == ExecutionStatus.RUNNING, 10, "run started")
    waiting = job_trigger(job)
    runs_claim(instance_id=INSTANCE)
    assert JobExecution.objects.get(pk=waiting.pk).status == ExecutionStatus.WAITING

    page.goto(f"{live_server.url}/scheduler/jobs/{job.pk}/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "a-long-test-password")
    page.click("input[type=submit]")
    expect(page.locator("h1")).to_contain_text("Long report")
    expect(page.get_by_test_id("run-policies")).to_contain_text("overlap buffer one")
    waiting_row = page.locator(f'#history tr[data-execution="{waiting.pk}"]')
    running_row = page.locator(f'#history tr[data-execution="{running.pk}"]')
    expect(waiting_row.locator(".badge").first).to_have_text("waiting")
    expect(running_row.locator(".badge").first).to_have_text("running")

    # The waiting run: cancelled at once, and it will never start.
    page.evaluate("window.__sameDocument = true")
    page.get_by_test_id(f"cancel-{waiting.pk}").click()
    expect(page.locator("#flash")).to_contain_text(f"Cancelled execution #{waiting.pk} of 'Long report'")
    expect(waiting_row.locator(".badge").first).to_have_text("cancelled")
    expect(page.get_by_test_id(f"cancel-{waiting.pk}")).to_have_count(0)

    # The running run: asked to stop, shown as such while it still runs.
    page.get_by_test_id(f"cancel-{running.pk}").click()
    expect(page.locator("#flash")).to_contain_text(f"Asked execution #{running.pk} of 'Long report' to stop")
    expect(page.get_by_test_id(f"cancel-requested-{running.pk}")).to_have_text("cancel requested")
    expect(running_row.locator(".badge").first).to_have_text("running")
    expect(page.get_by_test_id(f"cancel-{running.pk}")).to_have_count(0)
    assert page.evaluate("window.__sameDocument") is True
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-cancel-requested.png"), full_page=True)

    # What the scheduler process holding it does with the request: the sleep stops; the page,
    # refreshing itself, shows the run cancelled.
    for execution_id, reason in cancels_requested([running.pk]).items():
        assert run_cancel(execution_id, reason)
    thread.join(10)
    assert not thread.is_alive()
    expect(running_row.locator(".badge").first).to_have_text("cancelled")
    expect(page.get_by_test_id(f"cancel-requested-{running.pk}")).to_have_count(0)
    expect(running_row).to_contain_text("cancelled by operator")

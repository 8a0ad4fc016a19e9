"""The dashboard in a real headless Chromium: log in, see a job, trigger it, watch the run appear."""

import os
import shutil
from pathlib import Path

import pytest
from django.db import connections

from scheduler.backends import backend
from scheduler.models import JobType
from scheduler.services.claims import runs_claim
from scheduler.services.instances import instance_register
from scheduler.services.runs import execution_run
from scheduler.services.task_functions import task_functions_sync
from tests.conftest import service_missing
from tests.factories import IntervalJobFactory, UserFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts"
# Generous: the page refreshes itself every 5 s, and CI machines can be slow.
DEADLINE_MS = 30_000


@pytest.fixture
def migrated_rows(transactional_db):
    """Put back the rows migrations create: an earlier transactional test's flush removed them.
    And recount the summaries: on SQLite the flush is a DELETE per table, whose row triggers
    counted the jobs it deleted out of a tally it had already emptied."""
    for pk, name in ((JobType.INTERVAL, "interval"), (JobType.CRON, "cron"), (JobType.DATE, "date")):
        JobType.objects.update_or_create(pk=pk, defaults={"name": name})
    task_functions_sync()
    backend().summaries_rebuild()


@pytest.fixture
def browser_page(monkeypatch):
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        service_missing(f"Chromium is not installed at {CHROMIUM}", "install Debian's: apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # between browser steps are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(DEADLINE_MS)
        try:
            yield page, sync_api.expect
        finally:
            context.close()
            browser.close()
            # While Playwright runs, ORM calls get a connection of their own (Django keeps
            # connections per context, and Playwright's greenlets have their own); close it
            # here or PostgreSQL refuses to drop the test database afterwards.
            connections.close_all()


def test_log_in_see_trigger_and_watch_the_run(live_server, migrated_rows, browser_page):
    page, expect = browser_page
    UserFactory(username="operator", password="a-long-test-password", is_staff=True, is_superuser=True)
    job = IntervalJobFactory(name="Nightly report", interval_minutes=15)

    # Log in: the dashboard sends an anonymous visitor to the login page and back.
    page.goto(f"{live_server.url}/scheduler/")
    expect(page).to_have_url(f"{live_server.url}/admin/login/?next=/scheduler/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "a-long-test-password")
    page.click("input[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/scheduler/")

    # The job is listed with its schedule, and the page says no scheduler is running.
    row = page.locator(f'tr[data-job="{job.pk}"]')
    expect(row).to_contain_text("Nightly report")
    expect(row).to_contain_text("every 15 minutes")
    expect(row).to_contain_text("never run")
    expect(page.get_by_role("alert")).to_contain_text("No scheduler is running.")

    # Trigger: the page does not reload; it confirms, and the run shows up as pending.
    page.evaluate("window.__sameDocument = true")
    row.get_by_test_id(f"trigger-{job.pk}").click()
    expect(page.locator("#flash")).to_contain_text("Run requested for 'Nightly report'")
    execution = job.executions.get()
    run_row = page.locator(f'#recent tr[data-execution="{execution.pk}"]')
    expect(run_row).to_contain_text("pending")
    expect(run_row).to_contain_text("manual by operator")
    assert page.evaluate("window.__sameDocument") is True

    # A scheduler process starts and does one pass: it claims the manual run and runs it.
    # The page picks that up on its own refresh.
    instance_register(instance_id="browser-test-1", hostname="ci", pid=os.getpid())
    claimed = runs_claim(instance_id="browser-test-1")
    assert [run.execution_id for run in claimed] == [execution.pk]
    execution_run(execution.pk, instance_id="browser-test-1")

    expect(run_row.locator(".badge")).to_have_text("success")
    expect(row.locator(".badge[data-status]")).to_have_text("success")
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(page.locator("#status")).to_contain_text("browser-test-1")
    expect(page.locator("#runs-chart figcaption")).to_contain_text("(1 in all)")
    assert page.evaluate("window.__sameDocument") is True

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    # The job page shows the run in its history.
    page.click(f'#jobs a[href="/scheduler/jobs/{job.pk}/"]')
    expect(page.locator("h1")).to_contain_text("Nightly report")
    expect(page.locator(f'#history tr[data-execution="{execution.pk}"]')).to_contain_text("success")
    page.screenshot(path=str(ARTIFACTS / "dashboard-job.png"), full_page=True)


def test_a_job_declared_in_code_says_so_and_its_buttons_work(live_server, migrated_rows, browser_page, clean_registry):
    from scheduler.registry import cron
    from tests.factories import declared_jobs

    page, expect = browser_page
    UserFactory(username="operator", password="a-long-test-password", is_staff=True, is_superuser=True)
    job = declared_jobs(cron("0 2 * * *", name="Declared nightly", timezone="Europe/Paris"))["Declared nightly"]
    page.goto(f"{live_server.url}/admin/login/?next=/scheduler/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "a-long-test-password")
    page.click("input[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/scheduler/")

    row = page.locator(f'tr[data-job="{job.pk}"]')
    expect(row.locator(".managed-by")).to_have_text("defined in code (tests.factories.declared_task)")
    row.get_by_test_id(f"pause-{job.pk}").click()
    expect(page.locator("#flash")).to_contain_text("Paused 'Declared nightly'")
    expect(row).to_contain_text("paused")
    job.refresh_from_db()
    assert job.is_paused

    page.click(f'#jobs a[href="/scheduler/jobs/{job.pk}/"]')
    expect(page.locator("dd.managed-by")).to_contain_text("schedule and arguments change in code")
    expect(page.get_by_role("link", name="Open in the admin")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-declared-job.png"), full_page=True)

"""In a real headless Chromium: the dashboard shows, on its own refresh, that the scheduler
disabled a job after its last allowed run, and the job page shows its planned starts."""

import os

from scheduler.services.claims import runs_claim
from scheduler.services.instances import instance_register
from scheduler.services.runs import execution_run
from scheduler.services.schedules import job_planned_starts, job_upcoming_fire_times
from tests.factories import IntervalJobFactory, UserFactory
from tests.scheduler.views.test_dashboard_browser import (  # noqa: F401 (fixtures)
    DEADLINE_MS,
    browser_page,
    migrated_rows,
)


def test_a_job_done_with_its_runs_shows_why_and_a_jittered_job_its_starts(
    live_server,
    migrated_rows,  # noqa: F811
    browser_page,  # noqa: F811
):
    page, expect = browser_page
    UserFactory(username="operator", password="a-long-test-password", is_staff=True, is_superuser=True)
    limited = IntervalJobFactory(name="Twice only", interval_minutes=15, max_runs=1)
    jittered = IntervalJobFactory(name="Spread out", interval_minutes=15, jitter_seconds=600)
    page.goto(f"{live_server.url}/admin/login/?next=/scheduler/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "a-long-test-password")
    page.click("input[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/scheduler/")
    row = page.locator(f'tr[data-job="{limited.pk}"]')
    expect(row).to_contain_text("enabled")

    # One scheduler pass at the job's fire time: its one allowed run, then disabled.
    instance_register(instance_id="browser-test-2", hostname="ci", pid=os.getpid())
    [run] = [r for r in runs_claim(instance_id="browser-test-2", now=limited.next_run_time) if r.job_id == limited.pk]
    execution_run(run.execution_id, instance_id="browser-test-2")
    # The page refreshes itself every 5 s.
    expect(row.get_by_test_id(f"disabled-reason-{limited.pk}")).to_have_text("completed 1 run", timeout=DEADLINE_MS)
    expect(row).to_contain_text("disabled")

    times = job_upcoming_fire_times(jittered, 5)
    starts = job_planned_starts(jittered, times)
    page.goto(f"{live_server.url}/scheduler/jobs/{jittered.pk}/")
    expect(page.get_by_test_id("when-it-runs")).to_contain_text("jitter up to 600 s")
    for start in starts:
        expect(page.locator("#job")).to_contain_text(f"(starts {start:%H:%M:%S})")

"""The dashboard's working pages in a real headless Chromium: find jobs, act on several at once after a
confirmation, follow a run to its page and logs, see what is due in the next hour and the audit trail."""

from datetime import timedelta

from django.utils import timezone

from scheduler.models import ExecutionLog, JobExecution, ScheduledJob, TaskFunction
from scheduler.services.executions import execution_fail, execution_start
from tests.factories import CronJobFactory, ExecutionFactory, IntervalJobFactory, UserFactory
from tests.scheduler.views.test_dashboard_browser import ARTIFACTS, browser_page, migrated_rows  # noqa: F401


def test_search_act_on_many_follow_a_run_and_see_what_is_due(live_server, migrated_rows, browser_page):  # noqa: F811
    page, expect = browser_page
    ScheduledJob.objects.update(is_active=False, next_run_time=None)  # only this test's jobs
    UserFactory(username="operator", password="a-long-test-password", is_staff=True, is_superuser=True)
    echo = TaskFunction.objects.get(name="tasks.functions.echo")
    alpha = IntervalJobFactory(name="alpha report", interval_minutes=10, task_function=echo)
    beta = IntervalJobFactory(name="beta report", interval_minutes=30)
    gamma = CronJobFactory(name="gamma sync")
    run = ExecutionFactory(job=alpha, scheduled_time=timezone.now() - timedelta(minutes=1))
    execution_start(run, instance_id="browser-host")
    execution_fail(run, error="RuntimeError: disk full", traceback="Traceback (most recent call last):\n  boom")
    ExecutionLog.objects.create(
        execution=run,
        records=[{"at": timezone.now().isoformat(), "level": "WARNING", "logger": "myapp", "message": "disk at 99%"}],
    )

    page.goto(f"{live_server.url}/scheduler/jobs/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "a-long-test-password")
    page.click("input[type=submit]")
    expect(page.locator("h1")).to_have_text("Jobs")
    rows = page.locator("tr[data-job]")
    expect(rows).to_have_count(3)

    # Search by name, then filter by last status.
    page.fill("input[name=q]", "report")
    page.click("#filters button[type=submit]")
    expect(rows).to_have_count(2)
    expect(page.locator("#match-count")).to_contain_text("1-2 of 2 jobs")
    page.select_option("select[name=last]", "failed")
    page.click("#filters button[type=submit]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("alpha report")
    page.select_option("select[name=last]", "")
    page.select_option("select[name=sort]", "-name")
    page.click("#filters button[type=submit]")
    expect(rows.first).to_contain_text("beta report")

    # Tick both and pause them: a confirmation first, then the change.
    page.check(f'input[name=job][value="{alpha.pk}"]')
    page.check(f'input[name=job][value="{beta.pk}"]')
    page.select_option("#bulk-action", "pause")
    page.click("#bulk-go")
    expect(page.locator("h1")).to_have_text("Pause 2 jobs?")
    expect(page.locator("#confirm-sample")).to_contain_text("alpha report")
    assert ScheduledJob.objects.get(pk=alpha.pk).is_paused is False
    page.fill("input[name=reason]", "storage upgrade")
    page.click("#confirm-go")
    expect(page.locator("#flash")).to_contain_text("Paused 2 jobs.")
    expect(page.locator(f'tr[data-job="{alpha.pk}"] .badge.st-paused')).to_have_count(1)
    assert set(ScheduledJob.objects.filter(is_paused=True).values_list("pk", flat=True)) == {alpha.pk, beta.pk}
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-jobs.png"), full_page=True)

    # Every job the filter matches, without ticking any: resume them.
    page.select_option("#bulk-action", "resume")
    page.check("#all-matching")
    page.click("#bulk-go")
    expect(page.locator("h1")).to_have_text("Resume 2 jobs?")
    page.click("#confirm-go")
    expect(page.locator("#flash")).to_contain_text("Resumed 2 jobs.")
    assert not ScheduledJob.objects.filter(is_paused=True).exists()

    # From the last status to the run's own page, with its logs and timeline.
    page.click(f'tr[data-job="{alpha.pk}"] a[href="/scheduler/executions/{run.pk}/"]')
    expect(page.locator("h1")).to_contain_text(f"Execution #{run.pk}")
    expect(page.locator("#execution")).to_contain_text("RuntimeError: disk full")
    expect(page.locator("#timeline li")).to_have_count(3)
    expect(page.locator("#logs")).to_contain_text("disk at 99%")
    page.screenshot(path=str(ARTIFACTS / "dashboard-execution.png"), full_page=True)

    # What is due in the next hour, across jobs, soonest first.
    now = timezone.now()
    ScheduledJob.objects.filter(pk=alpha.pk).update(next_run_time=now + timedelta(minutes=3))
    ScheduledJob.objects.filter(pk=gamma.pk).update(next_run_time=now + timedelta(minutes=2))
    page.click("text=Upcoming")
    upcoming = page.locator("#upcoming tr[data-job]")
    expect(upcoming.first).to_contain_text("gamma sync")
    expect(page.locator(f'#upcoming tr[data-job="{alpha.pk}"]')).to_have_count(6)  # every 10 minutes

    # The job's page shows its audit trail: the two dashboard actions.
    page.goto(f"{live_server.url}/scheduler/jobs/{alpha.pk}/")
    trail = page.locator("#audit tr[data-audit]")
    expect(trail.first).to_contain_text("resume")
    expect(trail.first).to_contain_text("operator")
    expect(trail.first).to_contain_text("Dashboard")
    expect(page.locator('#audit tr[data-action="pause"]')).to_contain_text("storage upgrade")
    assert JobExecution.objects.count() == 1

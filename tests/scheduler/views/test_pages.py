"""The dashboard's working pages: jobs list filters and pages, actions on many jobs, execution, upcoming."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from scheduler.enums import ChangeSource, JobState
from scheduler.models import ExecutionLog, JobAuditEntry, JobExecution, ScheduledJob, TaskFunction
from scheduler.selectors import job_page, job_search, runs_upcoming
from scheduler.services.executions import execution_fail, execution_finish, execution_start
from scheduler.services.jobs import job_disable, job_pause
from tests.factories import CronJobFactory, ExecutionFactory, IntervalJobFactory, UserFactory

pytestmark = pytest.mark.django_db
JOBS = "/scheduler/jobs/"


def user_with(*codenames):
    user = UserFactory()
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="scheduler", codename__in=codenames))
    return user


@pytest.fixture
def operator(client):
    client.force_login(user_with("view_scheduledjob", "change_scheduledjob", "trigger_scheduledjob"))
    return client


@pytest.fixture
def fleet(db):
    ScheduledJob.objects.update(is_active=False)  # the built-in cleanup job is not part of these tests
    echo = TaskFunction.objects.get(name="tasks.functions.echo")
    jobs = {
        "alpha report": IntervalJobFactory(name="alpha report", priority=5),
        "beta report": IntervalJobFactory(name="beta report", task_function=echo),
        "gamma sync": CronJobFactory(name="gamma sync"),
        "delta sync": IntervalJobFactory(name="delta sync"),
    }
    job_pause(jobs["beta report"])
    job_disable(jobs["delta sync"])
    run = ExecutionFactory(job=jobs["alpha report"])
    execution_start(run)
    execution_fail(run, error="boom")
    ok = ExecutionFactory(job=jobs["gamma sync"])
    execution_start(ok)
    execution_finish(ok)
    return jobs


def names(response):
    return [job.name for job in response.context["jobs"]]


def test_search_filters_and_sorts(operator, fleet):
    assert names(operator.get(JOBS)) == ["alpha report", "beta report", "delta sync", "gamma sync"]
    assert names(operator.get(JOBS, {"q": "REPORT"})) == ["alpha report", "beta report"]
    assert names(operator.get(JOBS, {"state": "paused"})) == ["beta report"]
    assert names(operator.get(JOBS, {"state": "disabled"})) == ["delta sync"]
    echo = TaskFunction.objects.get(name="tasks.functions.echo")
    assert names(operator.get(JOBS, {"task": echo.pk})) == ["beta report"]
    assert names(operator.get(JOBS, {"last": "failed"})) == ["alpha report"]
    assert names(operator.get(JOBS, {"last": "success"})) == ["gamma sync"]
    assert names(operator.get(JOBS, {"last": "never"})) == ["beta report", "delta sync"]
    assert names(operator.get(JOBS, {"sort": "-priority"}))[0] == "alpha report"
    assert names(operator.get(JOBS, {"sort": "-name"}))[0] == "gamma sync"
    page = operator.get(JOBS, {"state": "nonsense", "sort": "drop table"})
    assert page.status_code == 200 and "(showing every job)" in page.content.decode()


def test_pages_without_a_full_count(operator, fleet, settings):
    for n in range(60):
        IntervalJobFactory(name=f"bulk {n:02d}")
    first = operator.get(JOBS, {"q": "bulk"})
    assert len(first.context["jobs"]) == 50 and first.context["next_query"] == "q=bulk&page=2"
    second = operator.get(JOBS, {"q": "bulk", "page": 2})
    assert names(second) == [f"bulk {n}" for n in range(50, 60)] and second.context["next_query"] is None
    assert "51-60 of 60 jobs" in second.content.decode()
    assert operator.get(JOBS, {"page": "x"}).status_code == 200


def test_an_action_on_selected_jobs_asks_first_then_goes_through_the_services(operator, fleet):
    alpha, gamma = fleet["alpha report"], fleet["gamma sync"]
    ask = operator.post(f"{JOBS}action/", {"action": "pause", "job": [alpha.pk, gamma.pk]})
    assert ask.status_code == 200
    page = ask.content.decode()
    assert "Pause 2 jobs?" in page and "alpha report" in page and "gamma sync" in page
    assert ScheduledJob.objects.get(pk=alpha.pk).state == JobState.SCHEDULED  # nothing changed yet
    done = operator.post(
        f"{JOBS}action/", {"action": "pause", "job": [alpha.pk, gamma.pk], "confirm": "1", "reason": "maintenance"}
    )
    assert done.status_code == 302
    assert {ScheduledJob.objects.get(pk=j.pk).pause_reason for j in (alpha, gamma)} == {"maintenance"}
    entry = JobAuditEntry.objects.of_job(alpha.pk).first()
    assert (entry.action, entry.source) == ("pause", ChangeSource.DASHBOARD)
    followed = operator.get(done["Location"])
    assert "Paused 2 jobs." in followed.content.decode()


def test_every_job_a_filter_matches_and_only_where_the_action_applies(operator, fleet, settings):
    operator.post(f"{JOBS}action/", {"action": "resume", "all_matching": "1", "q": "report", "confirm": "1"})
    assert ScheduledJob.objects.get(pk=fleet["beta report"].pk).state == JobState.SCHEDULED
    # alpha was not paused: resume leaves it (and its audit trail) alone.
    assert not JobAuditEntry.objects.filter(job=fleet["alpha report"], action="resume").exists()
    settings.SCHEDULER_BULK_ACTION_LIMIT = 1
    response = operator.post(
        f"{JOBS}action/", {"action": "trigger", "all_matching": "1", "q": "report", "confirm": "1"}
    )
    text = operator.get(response["Location"]).content.decode()
    assert "Asked for a run of 1 job." in text and "1 more were left for now" in text
    assert JobExecution.objects.filter(trigger="manual").count() == 1


def test_actions_on_many_jobs_need_the_permission(client, fleet):
    client.force_login(user_with("view_scheduledjob"))
    assert "bulk-action" not in client.get(JOBS).content.decode()
    response = client.post(f"{JOBS}action/", {"action": "pause", "job": [fleet["alpha report"].pk], "confirm": "1"})
    assert response.status_code == 403
    assert ScheduledJob.objects.get(pk=fleet["alpha report"].pk).state == JobState.SCHEDULED
    nothing = client.post(f"{JOBS}action/", {"action": "", "job": ["x"]})
    assert nothing.status_code == 302


def test_a_garbled_filter_never_widens_every_match_to_every_job(operator, fleet):
    response = operator.post(
        f"{JOBS}action/", {"action": "pause", "all_matching": "1", "state": "nope", "confirm": "1"}
    )
    assert response.status_code == 302
    assert not ScheduledJob.objects.filter(is_paused=True).exclude(pk=fleet["beta report"].pk).exists()


def test_the_execution_page(operator, fleet):
    run = JobExecution.objects.get(job=fleet["alpha report"])
    ExecutionLog.objects.create(
        execution=run,
        records=[{"at": "2026-01-01T00:00:00.000+00:00", "level": "ERROR", "logger": "app", "message": "disk <full>"}],
    )
    page = operator.get(f"/scheduler/executions/{run.pk}/").content.decode()
    assert "Execution #" in page and "boom" in page and "disk &lt;full&gt;" in page
    assert page.count('class="badge') >= 3  # the status, and the timeline's pending, running, failed
    assert operator.get("/scheduler/executions/999999/").status_code == 404


def test_upcoming_lists_the_next_hours_runs_soonest_first_and_bounded(operator, fleet):
    now = timezone.now()
    every_ten = IntervalJobFactory(name="every ten minutes", interval_minutes=10)
    ScheduledJob.objects.filter(pk=every_ten.pk).update(next_run_time=now + timedelta(minutes=5))
    ScheduledJob.objects.filter(pk=fleet["alpha report"].pk).update(next_run_time=now + timedelta(minutes=1))
    # "gamma sync" fires at 02:00 UTC: out of the coming hour, whenever the test runs (between 01:00 and 02:00
    # it would be in it).
    ScheduledJob.objects.filter(pk=fleet["gamma sync"].pk).update(next_run_time=now + timedelta(hours=2))
    window = runs_upcoming(now)
    times = [(run.job.name, round((run.at - now).total_seconds() / 60)) for run in window.runs]
    assert times[0] == ("alpha report", 1)
    assert [t for name, t in times if name == "every ten minutes"] == [5, 15, 25, 35, 45, 55]
    assert "beta report" not in {name for name, _ in times}  # paused
    assert window.complete and window.jobs_due == 2
    bounded = runs_upcoming(now, max_runs=3)
    assert len(bounded.runs) == 3 and not bounded.complete
    few_jobs = runs_upcoming(now, max_jobs=1)
    assert {run.job.name for run in few_jobs.runs} == {"alpha report"} and few_jobs.until == now + timedelta(minutes=5)
    page = operator.get("/scheduler/upcoming/").content.decode()
    assert "every ten minutes" in page and "every 10 minutes" in page


def test_a_page_of_jobs_is_two_queries_whatever_its_size(fleet, django_assert_num_queries):
    with django_assert_num_queries(2):  # the page's ids in order, then those rows with all a listing shows
        page = job_page(job_search(last_status="failed"), 0, 51)
    assert [job.name for job in page] == ["alpha report"] and page[0].last_execution_status == "failed"


def test_an_action_on_a_run_is_not_offered_on_many_jobs(operator, fleet):
    page = operator.get(JOBS).content.decode()
    assert 'value="pause"' in page and 'value="cancel"' not in page
    response = operator.post(f"{JOBS}action/", {"action": "cancel", "all_matching": "1", "confirm": "1"})
    assert "Choose an action." in operator.get(response["Location"]).content.decode()

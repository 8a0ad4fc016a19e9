"""The API of when a job runs: job fields (runAt, startAt, endAt, jitterSeconds, maxRuns,
excludeCalendarId), backfill, calendars, planned starts; bad values are 400s naming the field."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from scheduler.enums import ExecutionTrigger
from scheduler.models import ExecutionStatus, JobExecution, JobType, ScheduledJob
from scheduler.services.calendars import calendar_save
from scheduler.services.claims import runs_claim
from tests.factories import CronJobFactory, IntervalJobFactory
from tests.scheduler.api.conftest import API, JOBS, client_for, job_url, user_with
from tests.scheduler.api.test_validation import assert_field_error, post_job
from tests.scheduler.services.conftest import clock  # noqa: F401 (a fixture: the services' controllable clock)

pytestmark = pytest.mark.django_db


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def soon(**delta) -> datetime:
    return timezone.now().replace(microsecond=0) + timedelta(**delta)


def backfill_url(job_id) -> str:
    return f"{JOBS}/{job_id}/backfill"


# --- job fields --------------------------------------------------------------------------------


def test_a_date_job_is_created_with_run_at_and_shows_its_one_run(client, noop):
    run_at = soon(hours=2)
    response = post_job(client, {"name": "once", "taskFunctionId": noop.pk, "jobTypeId": 3, "runAt": iso(run_at)})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["jobTypeId"], body["jobTypeName"]) == (3, "date")
    assert datetime.fromisoformat(body["runAt"]) == run_at
    assert datetime.fromisoformat(body["nextRunTime"]) == run_at
    assert body["schedule"].startswith("once, at ")
    preview = client.get(f"{job_url(body['id'])}/preview", {"count": 5}).json()
    assert [datetime.fromisoformat(t) for t in preview["nextRunTimes"]] == [run_at]


def test_window_jitter_max_runs_and_calendar_round_trip(client, cron_body):
    calendar = calendar_save(name="holidays", timezone="Europe/Paris", dates=["2026-12-25"])
    start, end = soon(days=1), soon(days=30)
    cron_body.update(startAt=iso(start), endAt=iso(end), jitterSeconds=90, maxRuns=5, excludeCalendarId=calendar.pk)
    response = post_job(client, cron_body)
    assert response.status_code == 201, response.content
    body = response.json()
    assert datetime.fromisoformat(body["startAt"]) == start and datetime.fromisoformat(body["endAt"]) == end
    assert (body["jitterSeconds"], body["maxRuns"], body["remainingRuns"]) == (90, 5, 5)
    assert (body["excludeCalendarId"], body["disabledReason"]) == (calendar.pk, "")
    nominal, starts = datetime.fromisoformat(body["nextRunTime"]), datetime.fromisoformat(body["nextStartAt"])
    assert nominal >= start and nominal <= starts < nominal + timedelta(seconds=90)
    preview = client.get(f"{job_url(body['id'])}/preview", {"count": 3}).json()
    assert datetime.fromisoformat(preview["plannedStarts"][0]) == starts
    patched = client.patch(job_url(body["id"]), {"maxRuns": None, "jitterSeconds": 0}, format="json").json()
    assert (patched["remainingRuns"], patched["nextStartAt"]) == (None, patched["nextRunTime"])


@pytest.mark.parametrize(
    "change, field, fragment",
    [
        ({"runAt": "2026-12-24T18:00:00+01:00"}, "runAt", "only a date job"),
        ({"jobTypeId": 3}, "runAt", "needs runAt"),
        ({"startAt": "2030-01-02T00:00:00Z", "endAt": "2030-01-01T00:00:00Z"}, "endAt", "after startAt"),
        ({"endAt": "2020-01-01T00:00:00Z"}, "endAt", "move endAt"),
        ({"startAt": "2030-01-02T00:00:00"}, "startAt", "no utc offset"),
        ({"endAt": "soon"}, "endAt", "not an iso 8601"),
        ({"jitterSeconds": -1}, "jitterSeconds", "greater than or equal to 0"),
        ({"jitterSeconds": 86401}, "jitterSeconds", "less than or equal to 86400"),
        ({"jitterSeconds": 300}, "jitterSeconds", "shorter than the interval"),
        ({"maxRuns": 0}, "maxRuns", "greater than or equal to 1"),
        ({"maxRuns": "many"}, "maxRuns", "valid integer"),
        ({"excludeCalendarId": 987654}, "excludeCalendarId", "no calendar has id 987654"),
    ],
)
def test_bad_values_are_400s_naming_the_field(client, interval_body, change, field, fragment):
    interval_body.update(change)
    if change.get("jobTypeId") == 3:
        interval_body.pop("intervalMinutes")
    assert_field_error(post_job(client, interval_body), field, fragment)
    assert not ScheduledJob.objects.filter(name=interval_body["name"]).exists()


def test_a_date_job_with_a_window_is_refused_naming_it(client, noop):
    body = {"name": "once", "taskFunctionId": noop.pk, "jobTypeId": 3, "runAt": iso(soon(hours=1))}
    assert_field_error(post_job(client, {**body, "maxRuns": 3}), "maxRuns", "runs once")
    assert_field_error(post_job(client, {**body, "intervalMinutes": 3}), "intervalMinutes", "date jobs take no")
    assert_field_error(post_job(client, {**body, "runAt": "2020-01-01T00:00:00Z"}), "runAt", "in the past")


def test_patching_a_date_job_into_a_cron_job_clears_run_at(client, noop):
    body = {"name": "once", "taskFunctionId": noop.pk, "jobTypeId": 3, "runAt": iso(soon(hours=1))}
    job_id = post_job(client, body).json()["id"]
    patched = client.patch(job_url(job_id), {"jobTypeId": 2, "cronExpression": "0 3 * * *"}, format="json")
    assert patched.status_code == 200, patched.content
    assert patched.json()["runAt"] is None


def test_an_ended_job_shows_why_and_enabling_it_says_to_move_end_at(client, clock):  # noqa: F811
    job = IntervalJobFactory(interval_minutes=5, end_at=clock.now + timedelta(minutes=6))
    ScheduledJob.objects.exclude(pk=job.pk).update(is_enabled=False, next_run_time=None)
    clock.advance(minutes=5)
    runs_claim(instance_id="a", now=clock.now)
    body = client.get(job_url(job.pk)).json()
    assert (body["isEnabled"], body["nextRunTime"]) == (False, None)
    assert body["disabledReason"].startswith("ended: no fire time after its end at")
    response = client.post(f"{job_url(job.pk)}/action", {"action": "enable"}, format="json")
    assert_field_error(response, "endAt", "move endAt")


def test_executions_show_their_planned_start(client):
    job = IntervalJobFactory(interval_minutes=5, jitter_seconds=100)
    JobExecution.objects.create(
        job=job,
        status=ExecutionStatus.SUCCESS,
        trigger=ExecutionTrigger.SCHEDULED,
        scheduled_time=datetime(2026, 1, 1, tzinfo=UTC),
        planned_start=datetime(2026, 1, 1, 0, 0, 42, tzinfo=UTC),
    )
    [run] = client.get(f"{job_url(job.pk)}/history").json()["results"]
    assert run["plannedStart"] == "2026-01-01T00:00:42Z"


# --- backfill ----------------------------------------------------------------------------------


def test_backfill_answers_202_with_the_runs_queued_and_those_that_had_run(client):
    job = CronJobFactory(cron_expression="0 * * * *")
    end = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    start = end - timedelta(hours=5)
    JobExecution.objects.create(
        job=job, status=ExecutionStatus.SUCCESS, trigger=ExecutionTrigger.SCHEDULED, scheduled_time=end
    )
    dry = client.post(backfill_url(job.pk), {"start": iso(start), "end": iso(end), "dryRun": True}, format="json")
    assert (dry.status_code, dry.json()) == (202, {"queued": 4, "alreadyRan": 1, "dryRun": True})
    assert JobExecution.objects.filter(trigger=ExecutionTrigger.BACKFILL).count() == 0
    response = client.post(backfill_url(job.pk), {"start": iso(start), "end": iso(end)}, format="json")
    assert (response.status_code, response.json()) == (202, {"queued": 4, "alreadyRan": 1, "dryRun": False})
    waiting = JobExecution.objects.filter(trigger=ExecutionTrigger.BACKFILL, status=ExecutionStatus.WAITING)
    assert waiting.count() == 4
    history = client.get(f"{job_url(job.pk)}/history", {"trigger": "backfill"}).json()
    assert history["count"] == 4


@pytest.mark.parametrize(
    "body, field, fragment",
    [
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "end", "after start"),
        ({"start": "2026-01-01T00:00:00Z", "end": "2999-01-01T00:00:00Z"}, "end", "past only"),
        ({"start": "2000-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "end", "more than 10,000"),
        ({"start": "2026-01-01T00:00:00", "end": "2026-01-02T00:00:00Z"}, "start", "no utc offset"),
        ({"end": "2026-01-02T00:00:00Z"}, "start", "required"),
        (
            {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z", "overlapPolicy": "skip"},
            "overlapPolicy",
            "buffer_all or allow_all",
        ),
        ({"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z", "dryrun": True}, "dryrun", "unknown"),
    ],
)
def test_bad_backfills_are_400s_naming_the_field(client, body, field, fragment):
    job = CronJobFactory(cron_expression="*/5 * * * *")
    assert_field_error(client.post(backfill_url(job.pk), body, format="json"), field, fragment)
    assert not JobExecution.objects.filter(job=job).exists()


def test_backfill_needs_the_trigger_permission(db):
    job = CronJobFactory(cron_expression="0 * * * *")
    body = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T03:00:00Z", "dryRun": True}
    changer = user_with("view_scheduledjob", "change_scheduledjob", username="changer")
    assert client_for(changer).post(backfill_url(job.pk), body, format="json").status_code == 403
    trigger = user_with("view_scheduledjob", "trigger_scheduledjob", username="trigger")
    assert client_for(trigger).post(backfill_url(job.pk), body, format="json").status_code == 202


def test_backfill_of_a_missing_job_is_a_404(client):
    body = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T03:00:00Z"}
    assert client.post(backfill_url(99999), body, format="json").status_code == 404


# --- calendars ---------------------------------------------------------------------------------


def test_calendars_are_listed_and_read(client):
    calendar = calendar_save(name="France", timezone="Europe/Paris", dates=["2026-12-25", "2026-01-01"])
    listing = client.get(f"{API}/calendars").json()
    assert listing["count"] == 1
    [row] = listing["results"]
    assert (row["id"], row["name"], row["timezone"]) == (calendar.pk, "France", "Europe/Paris")
    assert row["dates"] == ["2026-01-01", "2026-12-25"]
    assert client.get(f"{API}/calendars/{calendar.pk}").json()["name"] == "France"
    assert client.get(f"{API}/calendars/999999").status_code == 404
    assert client.post(f"{API}/calendars", {"name": "x"}, format="json").status_code == 405


def test_calendars_are_read_by_job_readers_only(db, anonymous_client):
    calendar_save(name="France", timezone="Europe/Paris", dates=[])
    assert anonymous_client.get(f"{API}/calendars").status_code == 401
    nobody = user_with(username="nobody")
    assert client_for(nobody).get(f"{API}/calendars").status_code == 403
    viewer = user_with("view_scheduledjob", username="viewer")
    assert client_for(viewer).get(f"{API}/calendars").status_code == 200


def test_job_type_3_is_listed(client):
    assert JobType.objects.get(pk=3).name == "date"

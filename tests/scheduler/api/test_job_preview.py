"""GET /jobs/{id}/preview: a saved job's next fire times after a moment, as the engine will fire them."""

from datetime import UTC, datetime, timedelta

import pytest

from scheduler.models import ScheduledJob
from scheduler.services.jobs import job_delete
from scheduler.services.schedules import Schedule, job_upcoming_fire_times
from tests.factories import CronJobFactory, IntervalJobFactory
from tests.scheduler.api.conftest import JOBS, client_for, user_with

pytestmark = pytest.mark.django_db


def preview_url(job_id) -> str:
    return f"{JOBS}/{job_id}/preview"


def times(response) -> list[datetime]:
    return [datetime.fromisoformat(text.replace("Z", "+00:00")) for text in response.json()["nextRunTimes"]]


def test_without_after_it_lists_the_fire_times_from_the_next_run(client):
    job = CronJobFactory(cron_expression="*/10 * * * *", timezone="Europe/Paris")

    response = client.get(preview_url(job.pk))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"jobId", "schedule", "timezone", "nextRunTimes", "plannedStarts"}
    assert body["plannedStarts"] == body["nextRunTimes"]  # no jitter: each starts at its fire time
    assert body["jobId"] == job.pk and body["timezone"] == "Europe/Paris"
    assert body["schedule"] == "Every 10 minutes (Europe/Paris)"
    assert times(response) == job_upcoming_fire_times(job, 5)


def fall_back_in_new_york(year: int) -> datetime:
    """02:00 EDT on the first Sunday of November, as a UTC instant (06:00 UTC)."""
    first = datetime(year, 11, 1, 6, tzinfo=UTC)
    return first + timedelta(days=(6 - first.weekday()) % 7)


def test_after_a_fall_back_night_as_the_engine_fires_it(client):
    wildcard = CronJobFactory(cron_expression="*/30 * * * *", timezone="America/New_York")
    fixed = CronJobFactory(cron_expression="30 1 * * *", timezone="America/New_York")
    change = fall_back_in_new_york(datetime.now(UTC).year + 2)  # a night ahead of both jobs' next run
    after = (change - timedelta(minutes=70)).isoformat()  # 00:50 EDT

    wildcard_times = times(client.get(preview_url(wildcard.pk), {"after": after, "count": 5}))
    fixed_times = times(client.get(preview_url(fixed.pk), {"after": after, "count": 2}))

    # 01:00 EDT, 01:30 EDT, 01:00 EST, 01:30 EST, 02:00 EST for the wildcard job ...
    assert wildcard_times == [change - timedelta(hours=1) + timedelta(minutes=30 * n) for n in range(5)]
    # ... and 01:30 EDT only for the fixed one.
    assert fixed_times == [change - timedelta(minutes=30), change + timedelta(days=1, minutes=30)]
    # Each listed time is followed by the one the engine schedules after it.
    assert all(Schedule.of(wildcard).following(a) == b for a, b in zip(wildcard_times, wildcard_times[1:]))


def test_after_before_the_next_run_starts_at_the_next_run(client):
    job = CronJobFactory(cron_expression="0 * * * *")

    response = client.get(preview_url(job.pk), {"after": "2020-01-01T00:00:00Z", "count": 3})

    assert times(response) == job_upcoming_fire_times(job, 3)


def test_interval_job_previews_its_grid(client):
    job = IntervalJobFactory(interval_minutes=20)
    anchor = job.next_run_time
    after = anchor + timedelta(days=400, minutes=5)

    response = client.get(preview_url(job.pk), {"after": after.isoformat(), "count": 3})

    assert response.status_code == 200
    first = anchor + timedelta(days=400, minutes=20)
    assert times(response) == [first, first + timedelta(minutes=20), first + timedelta(minutes=40)]
    assert response.json()["schedule"] == "every 20 minutes"


@pytest.mark.parametrize(
    "params, field",
    [
        ({"after": "2026-11-01T01:30:00"}, "after"),
        ({"after": "soon"}, "after"),
        ({"count": "0"}, "count"),
        ({"count": "101"}, "count"),
    ],
)
def test_malformed_query_is_a_400_naming_the_parameter(client, params, field):
    job = CronJobFactory()

    response = client.get(preview_url(job.pk), params)

    assert response.status_code == 400
    assert field in response.json()


def test_missing_deleted_or_malformed_job_is_a_404(client):
    job = CronJobFactory()
    job_delete(job)

    for job_id in (job.pk, 999999, "abc"):
        assert client.get(preview_url(job_id)).status_code == 404


def test_needs_read_permission(anonymous_client, db):
    job = CronJobFactory()

    assert anonymous_client.get(preview_url(job.pk)).status_code == 401
    assert client_for(user_with()).get(preview_url(job.pk)).status_code == 403
    assert client_for(user_with("view_scheduledjob")).get(preview_url(job.pk)).status_code == 200


def test_a_disabled_job_previews_the_times_it_would_fire_once_enabled(client):
    job = CronJobFactory(cron_expression="0 3 * * *", is_enabled=False)
    assert ScheduledJob.objects.get(pk=job.pk).next_run_time is None

    response = client.get(preview_url(job.pk), {"count": 2})

    assert response.status_code == 200 and len(times(response)) == 2


def test_a_saved_schedule_with_no_further_fire_time_is_a_400_not_a_500(client):
    # Written before the Vixie rules: a 30 February that is an even weekday never comes.
    job = CronJobFactory(cron_expression="0 0 * * *")
    ScheduledJob.objects.filter(pk=job.pk).update(cron_expression="0 0 30 2 */2")

    response = client.get(preview_url(job.pk))

    assert response.status_code == 400
    assert "no 5 fire times from its next run" in response.json()["after"][0]

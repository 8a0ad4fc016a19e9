"""Jobs endpoints: create, list (pages, filters, ordering), read, replace, patch, delete; camelCase both ways."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scheduler.models import ExecutionStatus, JobExecution, ScheduledJob, TaskFunction
from scheduler.services.jobs import job_delete, job_disable, job_pause
from tests.factories import CronJobFactory, ExecutionFactory, IntervalJobFactory
from tests.scheduler.api.conftest import JOBS, job_url

pytestmark = pytest.mark.django_db

BUILT_IN_JOBS = 1  # migration 0003's "Execution history cleanup"


def names(response) -> list[str]:
    return [job["name"] for job in response.json()["results"]]


# --- create ------------------------------------------------------------------------------------


def test_create_interval_job_answers_201_with_the_job_in_camel_case(client, interval_body, superuser):
    response = client.post(JOBS, interval_body, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    job = ScheduledJob.objects.get(pk=body["id"])
    assert body["name"] == "every five"
    assert body["taskFunctionId"] == interval_body["taskFunctionId"]
    assert body["taskFunctionName"] == "tasks.functions.noop"
    assert body["jobTypeId"] == 1
    assert body["jobTypeName"] == "interval"
    assert body["intervalMinutes"] == 5
    assert body["schedule"] == "every 5 minutes"
    assert body["nextRunTime"] is not None
    assert body["lastRunTime"] is None
    assert body["lastExecutionStatus"] is None
    assert body["isEnabled"] is True and body["isPaused"] is False
    assert body["maxInstances"] == 1 and body["misfireGraceTime"] == 60 and body["coalesce"] is True
    assert body["createdBy"] == superuser.username
    assert job.created_by == superuser and job.interval_minutes == 5
    assert not any("_" in key for key in body), "response keys must be camelCase"


def test_create_cron_job_normalises_the_expression_and_describes_it(client, cron_body):
    cron_body["cronExpression"] = "  0   2 * * 0 "
    cron_body["timezone"] = "Europe/Paris"

    response = client.post(JOBS, cron_body, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["cronExpression"] == "0 2 * * 0"
    assert body["jobTypeName"] == "cron"
    assert body["schedule"] == "At 02:00, only on Sunday (Europe/Paris)"
    assert body["intervalMinutes"] is None


def test_create_accepts_every_writable_field(client, noop):
    body = {
        "name": "full",
        "description": "all fields",
        "taskFunctionId": noop.pk,
        "jobTypeId": 1,
        "intervalSeconds": 30,
        "intervalMinutes": 1,
        "intervalHours": 0,
        "intervalDays": None,
        "timezone": "Europe/Berlin",
        "args": [1, "two", None, {"three": 3}],
        "kwargs": {"seconds": 5},
        "priority": -7,
        "maxInstances": 3,
        "misfireGraceTime": 120,
        "coalesce": False,
        "historyLimit": 50,
        "isEnabled": False,
    }

    response = client.post(JOBS, body, format="json")

    assert response.status_code == 201, response.content
    saved = response.json()
    for key, value in body.items():
        assert saved[key] == value, key
    assert saved["nextRunTime"] is None, "a disabled job has no next run"
    assert saved["schedule"] == "every 1 minute 30 seconds"


def test_task_arguments_keep_their_keys_as_sent_in_both_directions(client, interval_body):
    interval_body["args"] = [{"someKey": 1, "other_key": 2}]
    interval_body["kwargs"] = {"olderThanDays": 3, "snake_case": {"innerKey": True}}

    response = client.post(JOBS, interval_body, format="json")

    assert response.status_code == 201, response.content
    job = ScheduledJob.objects.get(pk=response.json()["id"])
    assert job.args == [{"someKey": 1, "other_key": 2}]
    assert job.kwargs == {"olderThanDays": 3, "snake_case": {"innerKey": True}}
    fetched = client.get(job_url(job.pk)).json()
    assert fetched["args"] == interval_body["args"]
    assert fetched["kwargs"] == interval_body["kwargs"]


def test_read_only_fields_sent_back_are_ignored(client, interval_body):
    """A client may PUT back what it got from GET: id, nextRunTime and the like are ignored."""
    created = client.post(JOBS, interval_body, format="json").json()
    edited = {**created, "priority": 9, "nextRunTime": "2000-01-01T00:00:00Z", "isPaused": True, "id": 0}

    response = client.put(job_url(created["id"]), edited, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["priority"] == 9
    assert body["id"] == created["id"]
    assert body["isPaused"] is False
    assert body["nextRunTime"] == created["nextRunTime"], "same schedule: the next run stays"


@pytest.mark.parametrize("path", [JOBS, f"{JOBS}/"])
def test_trailing_slash_is_optional(client, interval_body, path):
    assert client.get(path).status_code == 200
    assert client.post(path, interval_body, format="json").status_code == 201


# --- list --------------------------------------------------------------------------------------


def test_list_uses_drf_page_format_and_shows_only_active_jobs(client):
    kept = IntervalJobFactory(name="kept")
    deleted = IntervalJobFactory(name="deleted")
    job_delete(deleted)

    response = client.get(JOBS)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == BUILT_IN_JOBS + 1
    assert "kept" in names(response) and "deleted" not in names(response)
    assert kept.pk in [job["id"] for job in body["results"]]


def test_list_shows_each_jobs_last_execution(client):
    job = IntervalJobFactory(name="ran")
    ExecutionFactory(job=job, status=ExecutionStatus.FAILED)
    newest = ExecutionFactory(job=job, status=ExecutionStatus.SUCCESS)

    (listed,) = [j for j in client.get(JOBS).json()["results"] if j["id"] == job.pk]

    assert listed["lastExecutionStatus"] == "success"
    assert listed["lastExecutionId"] == newest.pk


def test_page_size_parameter_is_pagesize_and_is_capped_at_100(client):
    for n in range(105 - BUILT_IN_JOBS):
        IntervalJobFactory(name=f"job {n:03}")

    assert len(client.get(JOBS).json()["results"]) == 20
    small = client.get(JOBS, {"pageSize": 3}).json()
    assert len(small["results"]) == 3 and small["count"] == 105
    assert "pageSize=3" in small["next"] and "page=2" in small["next"]
    assert len(client.get(JOBS, {"pageSize": 1000}).json()["results"]) == 100
    assert len(client.get(JOBS, {"pageSize": 100, "page": 2}).json()["results"]) == 5


@pytest.mark.parametrize("size", ["0", "-1", "abc", "1.5"])
def test_invalid_page_size_is_a_400_naming_pagesize(client, size):
    response = client.get(JOBS, {"pageSize": size})

    assert response.status_code == 400
    assert "pageSize" in response.json()


@pytest.mark.parametrize("page", ["99", "0", "abc"])
def test_page_out_of_range_is_a_404(client, page):
    response = client.get(JOBS, {"page": page})

    assert response.status_code == 404
    assert "detail" in response.json()


def test_filters_enabled_paused_type_function_and_name_search(client):
    echo = TaskFunction.objects.get(name="tasks.functions.echo")
    IntervalJobFactory(name="alpha report")
    job_disable(IntervalJobFactory(name="beta disabled"))
    job_pause(CronJobFactory(name="gamma paused"))
    IntervalJobFactory(name="delta echo", task_function=echo)

    def listed(**params):
        return sorted(names(client.get(JOBS, params)))

    assert listed(enabled="false") == ["beta disabled"]
    assert "beta disabled" not in listed(enabled="true")
    assert listed(paused="true") == ["gamma paused"]
    assert listed(jobTypeId=1) == ["alpha report", "beta disabled", "delta echo"]
    assert listed(jobTypeId=2) == ["Execution history cleanup", "gamma paused"]
    assert listed(taskFunctionId=echo.pk) == ["delta echo"]
    assert listed(search="REPORT") == ["alpha report"]
    assert listed(search="a", paused="false", jobTypeId=1) == ["alpha report", "beta disabled", "delta echo"]
    assert listed(enabled="") == listed(), "an empty value means the filter is not applied"


@pytest.mark.parametrize(
    "params, field",
    [
        ({"enabled": "maybe"}, "enabled"),
        ({"paused": "2"}, "paused"),
        ({"jobTypeId": "interval"}, "jobTypeId"),
        ({"jobTypeId": "0"}, "jobTypeId"),
        ({"taskFunctionId": str(2**64)}, "taskFunctionId"),
        ({"ordering": "description"}, "ordering"),
        ({"search": "x" * 201}, "search"),
        ({"search": "nul\x00"}, "search"),
    ],
)
def test_invalid_filter_values_are_a_400_naming_the_parameter(client, params, field):
    response = client.get(JOBS, params)

    assert response.status_code == 400
    assert field in response.json()


def test_ordering_by_name_priority_and_next_run_time(client):
    now = timezone.now()
    a = IntervalJobFactory(name="a", priority=1)
    b = IntervalJobFactory(name="b", priority=3)
    c = IntervalJobFactory(name="c", priority=2)
    ScheduledJob.objects.filter(pk=a.pk).update(next_run_time=now + timedelta(minutes=3))
    ScheduledJob.objects.filter(pk=b.pk).update(next_run_time=now + timedelta(minutes=1))
    job_disable(c)  # no next run: listed last in both directions
    ScheduledJob.objects.exclude(pk__in=[a.pk, b.pk, c.pk]).update(is_active=False)

    def order(ordering):
        return names(client.get(JOBS, {"ordering": ordering}))

    assert order("name") == ["a", "b", "c"]
    assert order("-name") == ["c", "b", "a"]
    assert order("-priority") == ["b", "c", "a"]
    assert order("nextRunTime") == ["b", "a", "c"]
    assert order("-nextRunTime") == ["a", "b", "c"]
    assert names(client.get(JOBS)) == ["a", "b", "c"], "default: by name"


def test_list_query_count_does_not_grow_with_page_size(client):
    for n in range(30):
        job = IntervalJobFactory(name=f"job {n:02}")
        ExecutionFactory(job=job)

    def queries_for(page_size):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(JOBS, {"pageSize": page_size})
        assert response.status_code == 200
        assert len(response.json()["results"]) == page_size
        return len(captured)

    assert queries_for(2) == queries_for(25)
    # A list that fits on one page (the 30 and the built-in cleanup job) is counted by reading
    # that page: one query fewer.
    assert queries_for(31) < queries_for(2)


def test_list_takes_a_fixed_small_number_of_queries(client, django_assert_max_num_queries):
    for n in range(10):
        ExecutionFactory(job=IntervalJobFactory(name=f"job {n}"))

    with django_assert_max_num_queries(4):  # permissions, count, page (+ one spare)
        assert client.get(JOBS).status_code == 200


# --- read ----------------------------------------------------------------------------------------


def test_retrieve_one_job(client, interval_job):
    response = client.get(job_url(interval_job.pk))

    assert response.status_code == 200
    assert response.json()["id"] == interval_job.pk
    assert response.json()["name"] == interval_job.name


def test_retrieve_ignores_list_filters(client, interval_job):
    assert client.get(job_url(interval_job.pk), {"enabled": "false"}).status_code == 200


@pytest.mark.parametrize("job_id", ["999999", "abc", "1.5", str(2**70), "-1"])
def test_missing_job_is_a_json_404(client, job_id):
    response = client.get(job_url(job_id))

    assert response.status_code == 404
    assert response.json() == {"detail": "No job with this id (it may have been deleted)."}


def test_deleted_job_is_a_404_everywhere(client, interval_job, interval_body):
    job_delete(interval_job)

    assert client.get(job_url(interval_job.pk)).status_code == 404
    assert client.put(job_url(interval_job.pk), interval_body, format="json").status_code == 404
    assert client.patch(job_url(interval_job.pk), {"priority": 1}, format="json").status_code == 404
    assert client.delete(job_url(interval_job.pk)).status_code == 404


def test_unknown_urls_under_the_api_are_json_404s(client):
    response = client.get("/api/v1/scheduler/nothing/here")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


# --- update --------------------------------------------------------------------------------------


def test_patch_changes_only_the_fields_sent(client, interval_job, superuser):
    response = client.patch(job_url(interval_job.pk), {"priority": 5, "description": "new"}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["priority"] == 5 and body["description"] == "new"
    assert body["intervalMinutes"] == 5 and body["name"] == interval_job.name
    assert body["updatedBy"] == superuser.username


def test_patch_switching_to_cron_clears_the_interval(client, interval_job):
    response = client.patch(job_url(interval_job.pk), {"jobTypeId": 2, "cronExpression": "*/10 * * * *"}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["jobTypeId"] == 2 and body["intervalMinutes"] is None
    assert body["schedule"] == "Every 10 minutes"


def test_patch_switching_to_interval_clears_the_cron_expression(client, cron_job):
    response = client.patch(job_url(cron_job.pk), {"jobTypeId": 1, "intervalHours": 2}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["cronExpression"] is None
    assert response.json()["schedule"] == "every 2 hours"


def test_patch_schedule_change_restarts_the_next_run(client, interval_job):
    before = client.get(job_url(interval_job.pk)).json()["nextRunTime"]

    after = client.patch(job_url(interval_job.pk), {"intervalMinutes": 60}, format="json").json()

    assert after["nextRunTime"] != before


def test_put_replaces_the_job_and_resets_fields_left_out(client, noop):
    job = IntervalJobFactory(name="old", priority=4, max_instances=3, description="old text")

    response = client.put(
        job_url(job.pk),
        {"name": "new", "taskFunctionId": noop.pk, "jobTypeId": 2, "cronExpression": "0 3 * * *"},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"] == "new" and body["cronExpression"] == "0 3 * * *"
    assert body["priority"] == 0 and body["maxInstances"] == 1 and body["description"] == ""
    assert body["intervalMinutes"] is None


def test_put_requires_the_fields_post_requires(client, interval_job):
    response = client.put(job_url(interval_job.pk), {"priority": 1}, format="json")

    assert response.status_code == 400
    assert {"name", "taskFunctionId", "jobTypeId"} <= set(response.json())


def test_update_keeps_pause_state(client, interval_job):
    job_pause(interval_job, reason="maintenance")

    body = client.patch(job_url(interval_job.pk), {"priority": 2}, format="json").json()

    assert body["isPaused"] is True and body["pauseReason"] == "maintenance"


# --- delete --------------------------------------------------------------------------------------


def test_delete_is_a_soft_delete_that_keeps_history(client, interval_job):
    ExecutionFactory(job=interval_job)

    response = client.delete(job_url(interval_job.pk))

    assert response.status_code == 204
    assert response.content == b""
    interval_job.refresh_from_db()
    assert interval_job.is_active is False and interval_job.next_run_time is None
    assert JobExecution.objects.filter(job=interval_job).count() == 1
    assert interval_job.pk not in [j["id"] for j in client.get(JOBS).json()["results"]]


def test_a_deleted_jobs_name_can_be_used_again(client, interval_body):
    first = client.post(JOBS, interval_body, format="json").json()
    client.delete(job_url(first["id"]))

    assert client.post(JOBS, interval_body, format="json").status_code == 201

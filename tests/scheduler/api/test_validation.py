"""Bad input on job writes: every case is a 400 naming the camelCase field with a usable message, never a 500."""

import json

import pytest

from scheduler.models import ScheduledJob, TaskFunction
from scheduler.services.jobs import job_delete
from tests.factories import IntervalJobFactory
from tests.scheduler.api.conftest import JOBS, job_url

pytestmark = pytest.mark.django_db


def post_job(client, body):
    return client.post(JOBS, body, format="json")


def assert_field_error(response, field, *fragments):
    assert response.status_code == 400, response.content
    errors = response.json()
    assert field in errors, errors
    message = " ".join(errors[field])
    for fragment in fragments:
        assert fragment.lower() in message.lower(), message
    return message


# --- the schedule ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression, fragment",
    [
        ("a b c d e", "invalid cron expression"),
        ("0 2 * *", "has 5 fields"),
        ("0 2 * * * *", "has 5 fields"),
        ("61 * * * *", "out of range"),
        ("0 25 * * *", "out of range"),
        ("0 0 32 * *", "out of range"),
        ("0 0 30 2 *", "never matches"),
        ("0 0 ? * *", "standard cron does not support"),
        ("@fortnightly", "unknown cron macro"),
    ],
)
def test_bad_cron_expression_names_cronexpression(client, cron_body, expression, fragment):
    cron_body["cronExpression"] = expression

    assert_field_error(post_job(client, cron_body), "cronExpression", fragment)


def test_unknown_timezone_names_timezone(client, cron_body):
    cron_body["timezone"] = "Mars/Olympus_Mons"

    assert_field_error(post_job(client, cron_body), "timezone", "Unknown timezone", "IANA")


def test_interval_job_with_a_cron_expression_is_refused(client, interval_body):
    interval_body["cronExpression"] = "0 2 * * *"

    assert_field_error(post_job(client, interval_body), "cronExpression", "Interval jobs take no cron")


def test_cron_job_with_an_interval_is_refused(client, cron_body):
    cron_body["intervalMinutes"] = 5

    assert_field_error(post_job(client, cron_body), "intervalMinutes", "Cron jobs take no interval")


def test_interval_job_without_an_interval_is_refused(client, interval_body):
    del interval_body["intervalMinutes"]

    assert_field_error(post_job(client, interval_body), "intervalSeconds", "at least one")


def test_interval_job_with_only_zero_parts_is_refused(client, interval_body):
    interval_body.update(intervalSeconds=0, intervalMinutes=0, intervalHours=0, intervalDays=0)

    assert_field_error(post_job(client, interval_body), "intervalSeconds", "greater than 0")


def test_cron_job_without_an_expression_is_refused(client, cron_body):
    del cron_body["cronExpression"]

    assert_field_error(post_job(client, cron_body), "cronExpression", "needs a cron expression")


def test_interval_beyond_ten_years_is_refused(client, interval_body):
    interval_body["intervalDays"] = 2**31 - 1

    assert_field_error(post_job(client, interval_body), "intervalDays", "at most 3650 days")


# --- the task function and the job type ----------------------------------------------------------


def test_unknown_task_function_names_taskfunctionid(client, interval_body):
    interval_body["taskFunctionId"] = 987654

    assert_field_error(post_job(client, interval_body), "taskFunctionId", "No task function has id")


def test_inactive_task_function_names_taskfunctionid(client, interval_body):
    retired = TaskFunction.objects.create(name="tasks.retired", is_active=False)
    interval_body["taskFunctionId"] = retired.pk

    assert_field_error(post_job(client, interval_body), "taskFunctionId", "inactive")


@pytest.mark.parametrize("job_type", [0, 4, 99])
def test_job_type_other_than_1_2_or_3_names_jobtypeid(client, interval_body, job_type):
    interval_body["jobTypeId"] = job_type

    assert_field_error(post_job(client, interval_body), "jobTypeId", "use 1 (interval), 2 (cron) or 3 (date)")


@pytest.mark.parametrize("body_change", [{"taskFunctionId": None}, {"jobTypeId": None}, {"name": None}])
def test_required_fields_may_not_be_null(client, interval_body, body_change):
    interval_body.update(body_change)
    (field,) = body_change

    assert_field_error(post_job(client, interval_body), field, "may not be null")


def test_missing_required_fields_are_each_named(client):
    response = post_job(client, {})

    assert response.status_code == 400
    assert {"name", "taskFunctionId", "jobTypeId"} <= set(response.json())


# --- args and kwargs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["[1, 2]", {"a": 1}, 5, True])
def test_non_list_args_is_refused(client, interval_body, value):
    interval_body["args"] = value

    assert_field_error(post_job(client, interval_body), "args", "must be a JSON list")


@pytest.mark.parametrize("value", [[1, 2], "{}", 5, False])
def test_non_object_kwargs_is_refused(client, interval_body, value):
    interval_body["kwargs"] = value

    assert_field_error(post_job(client, interval_body), "kwargs", "must be a JSON object")


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("args", ["nul \u0000 inside"], "NUL"),
        ("kwargs", {"key\u0000": 1}, "NUL"),
        ("args", [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]], "nested"),
    ],
)
def test_arguments_no_database_can_store_are_refused(client, interval_body, field, value, fragment):
    interval_body[field] = value

    assert_field_error(post_job(client, interval_body), field, "cannot be stored", fragment)


def test_lone_surrogates_in_arguments_are_refused(client, interval_body):
    raw = json.dumps({**interval_body, "kwargs": {"text": "PLACEHOLDER"}}).replace("PLACEHOLDER", "\\ud800")

    response = client.post(JOBS, raw, content_type="application/json")

    assert_field_error(response, "kwargs", "cannot be stored", "surrogate")


def test_large_integers_inside_args_are_kept(client, interval_body):
    interval_body["args"] = [2**80, -(2**70)]

    response = post_job(client, interval_body)

    assert response.status_code == 201, response.content
    assert response.json()["args"] == [2**80, -(2**70)]


# --- numbers and strings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("maxInstances", 0, "greater than or equal to 1"),
        ("maxInstances", 11, "less than or equal to 10"),
        ("misfireGraceTime", 0, "greater than or equal to 1"),
        ("intervalMinutes", -5, "greater than or equal to 0"),
        ("priority", 2**31, "less than or equal to"),
        ("priority", -(2**31) - 1, "greater than or equal to"),
        ("historyLimit", 0, "greater than or equal to 1"),
        ("intervalSeconds", 10**30, "less than or equal to"),
        ("taskFunctionId", 2**64, "less than or equal to"),
        ("taskFunctionId", "seven", "valid integer"),
        ("priority", 1.5, "valid integer"),
        ("maxInstances", [1], "valid integer"),
        ("isEnabled", "maybe", "valid boolean"),
        ("coalesce", {}, "valid boolean"),
    ],
)
def test_out_of_range_or_mistyped_numbers_name_the_field(client, interval_body, field, value, fragment):
    interval_body[field] = value

    assert_field_error(post_job(client, interval_body), field, fragment)


@pytest.mark.parametrize(
    "field, length",
    [("name", 201), ("cronExpression", 121), ("timezone", 65), ("description", 10_001)],
)
def test_over_long_strings_name_the_field(client, cron_body, field, length):
    cron_body[field] = "x" * length

    assert_field_error(post_job(client, cron_body), field, "no more than")


@pytest.mark.parametrize("name", ["", "   ", "tab\u0000nul"])
def test_blank_or_unstorable_names_are_refused(client, interval_body, name):
    interval_body["name"] = name

    assert_field_error(post_job(client, interval_body), "name")


def test_duplicate_name_among_active_jobs_names_name(client, interval_body):
    IntervalJobFactory(name=interval_body["name"])

    assert_field_error(post_job(client, interval_body), "name", "already exists")


def test_renaming_onto_another_jobs_name_is_refused(client):
    IntervalJobFactory(name="taken")
    other = IntervalJobFactory(name="free")

    response = client.patch(job_url(other.pk), {"name": "taken"}, format="json")

    assert_field_error(response, "name", "already exists")


def test_unknown_fields_are_refused_by_their_camelcase_name(client, interval_body):
    interval_body["intervalMinute"] = 3
    interval_body["color"] = "blue"

    response = post_job(client, interval_body)

    assert response.status_code == 400
    assert response.json() == {"color": ["Unknown field."], "intervalMinute": ["Unknown field."]}


def test_several_errors_come_back_together(client, noop):
    response = post_job(
        client,
        {
            "name": "x",
            "taskFunctionId": noop.pk,
            "jobTypeId": 2,
            "cronExpression": "99 * * * *",
            "timezone": "Nowhere/City",
            "intervalMinutes": 3,
        },
    )

    assert response.status_code == 400
    assert {"timezone", "intervalMinutes"} <= set(response.json())


def test_patch_validates_against_the_stored_job(client, interval_job):
    response = client.patch(job_url(interval_job.pk), {"cronExpression": "0 2 * * *"}, format="json")

    assert_field_error(response, "cronExpression", "Interval jobs take no cron")
    interval_job.refresh_from_db()
    assert interval_job.cron_expression is None


# --- the body itself ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ("{bad json", "JSON parse error"),
        ('{"name": "x",}', "JSON parse error"),
        ('{"priority": NaN}', "NaN is not valid JSON"),
        ('{"priority": Infinity}', "Infinity is not valid JSON"),
        ('{"args": [1e999]}', "out of range"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"name": "\xff"}'.encode("latin-1"), "JSON parse error"),
        ('{"priority": ' + "9" * 5000 + "}", "JSON parse error"),
    ],
)
def test_malformed_json_is_a_400_with_detail(client, raw, fragment):
    response = client.post(JOBS, raw, content_type="application/json")

    assert response.status_code == 400, response.content
    assert fragment in response.json()["detail"]


@pytest.mark.parametrize("raw", ["[]", '"a string"', "42", "null", "true"])
def test_a_body_that_is_not_an_object_is_a_400(client, raw):
    response = client.post(JOBS, raw, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["nonFieldErrors"] == [response.json()["nonFieldErrors"][0]]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_bodies_that_are_not_json_are_a_415(client, content_type):
    response = client.post(JOBS, "name=x", content_type=content_type)

    assert response.status_code == 415
    assert "Unsupported media type" in response.json()["detail"]


def test_empty_body_names_the_required_fields(client):
    response = client.post(JOBS, "", content_type="application/json")

    assert response.status_code == 400
    assert {"name", "taskFunctionId", "jobTypeId"} <= set(response.json())


def test_nothing_was_saved_by_refused_requests(client, cron_body):
    before = ScheduledJob.objects.count()
    cron_body["cronExpression"] = "bad"
    post_job(client, cron_body)
    client.post(JOBS, "{bad", content_type="application/json")

    assert ScheduledJob.objects.count() == before


def test_editing_a_job_deleted_meanwhile_is_a_404(client, interval_job):
    job_delete(interval_job)

    response = client.patch(job_url(interval_job.pk), {"priority": 1}, format="json")

    assert response.status_code == 404

"""The OpenAPI schema: generated without warnings, camelCase like the JSON, every endpoint with its errors."""

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db

SCHEMA = "/api/v1/schema/"
PREFIX = "/api/v1/scheduler"


@pytest.fixture
def schema(anonymous_client):
    response = anonymous_client.get(SCHEMA, {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_schema_generates_without_warnings_or_errors(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_schema_is_public_openapi_3(anonymous_client):
    response = anonymous_client.get(SCHEMA)

    assert response.status_code == 200
    assert response.content.startswith(b"openapi: 3.")


def test_every_endpoint_is_documented(schema):
    operations = {(path, method) for path, item in schema["paths"].items() for method in item}

    assert operations == {
        (f"{PREFIX}/jobs/", "get"),
        (f"{PREFIX}/jobs/", "post"),
        (f"{PREFIX}/jobs/{{id}}/", "get"),
        (f"{PREFIX}/jobs/{{id}}/", "put"),
        (f"{PREFIX}/jobs/{{id}}/", "patch"),
        (f"{PREFIX}/jobs/{{id}}/", "delete"),
        (f"{PREFIX}/jobs/{{id}}/action/", "post"),
        (f"{PREFIX}/jobs/{{id}}/audit/", "get"),
        (f"{PREFIX}/executions/{{id}}/", "get"),
        (f"{PREFIX}/jobs/{{id}}/history/", "get"),
        (f"{PREFIX}/jobs/{{id}}/preview/", "get"),
        (f"{PREFIX}/status/", "get"),
        (f"{PREFIX}/task-functions/", "get"),
        (f"{PREFIX}/task-functions/{{id}}/", "get"),
        (f"{PREFIX}/jobs/{{id}}/backfill/", "post"),
        (f"{PREFIX}/calendars/", "get"),
        (f"{PREFIX}/calendars/{{id}}/", "get"),
        (f"{PREFIX}/cron/preview/", "get"),
    }


def test_bodies_and_parameters_are_camel_case(schema):
    components = schema["components"]["schemas"]
    job = components["Job"]["properties"]
    request = components["JobWriteRequest"]

    assert {
        "taskFunctionId",
        "jobTypeId",
        "intervalSeconds",
        "cronExpression",
        "maxInstances",
        "misfireGraceTime",
        "isEnabled",
        "isPaused",
        "nextRunTime",
        "lastExecutionStatus",
    } <= set(job)
    assert set(request["required"]) == {"name", "taskFunctionId", "jobTypeId"}
    for component in components.values():
        assert not any("_" in name for name in component.get("properties", {})), component
    list_parameters = {p["name"] for p in schema["paths"][f"{PREFIX}/jobs/"]["get"]["parameters"]}
    assert list_parameters == {
        "enabled",
        "paused",
        "jobTypeId",
        "taskFunctionId",
        "search",
        "ordering",
        "page",
        "pageSize",
    }
    history_parameters = {p["name"] for p in schema["paths"][f"{PREFIX}/jobs/{{id}}/history/"]["get"]["parameters"]}
    assert {"status", "trigger", "page", "pageSize"} <= history_parameters


def test_request_bodies_are_documented(schema):
    def body_ref(path, method):
        return schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]

    assert body_ref(f"{PREFIX}/jobs/", "post").endswith("/JobWriteRequest")
    assert body_ref(f"{PREFIX}/jobs/{{id}}/", "put").endswith("/JobWriteRequest")
    assert body_ref(f"{PREFIX}/jobs/{{id}}/", "patch").endswith("/PatchedJobWriteRequest")
    assert body_ref(f"{PREFIX}/jobs/{{id}}/action/", "post").endswith("/JobActionRequest")
    actions = schema["components"]["schemas"]["ActionEnum"]["enum"]
    assert actions == ["trigger", "pause", "resume", "enable", "disable", "cancel"]


def test_error_responses_are_documented(schema):
    paths = schema["paths"]
    create = paths[f"{PREFIX}/jobs/"]["post"]["responses"]
    action = paths[f"{PREFIX}/jobs/{{id}}/action/"]["post"]["responses"]
    detail = paths[f"{PREFIX}/jobs/{{id}}/"]["get"]["responses"]

    assert {"201", "400", "401", "403", "415"} <= set(create)
    assert {"200", "202", "400", "401", "403", "404"} <= set(action)
    assert {"200", "401", "403", "404"} <= set(detail)
    job_errors = schema["components"]["schemas"]["JobValidationError"]["properties"]
    assert {"cronExpression", "taskFunctionId", "nonFieldErrors", "detail"} <= set(job_errors)
    for path, item in paths.items():
        for method, operation in item.items():
            assert {"401", "403"} <= set(operation["responses"]) or path.endswith("/cron/preview/"), (path, method)


def test_swagger_ui_is_served(anonymous_client):
    response = anonymous_client.get(f"{SCHEMA}swagger-ui/")

    assert response.status_code == 200
    assert b"swagger-ui" in response.content
    assert SCHEMA.encode() in response.content


def test_swagger_ui_is_served_without_a_cdn(client):
    response = client.get("/api/v1/schema/swagger-ui/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "swagger-ui-bundle.js" in page
    assert "cdn.jsdelivr.net" not in page and "unpkg.com" not in page

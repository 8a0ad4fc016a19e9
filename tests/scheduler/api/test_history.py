"""GET /jobs/{id}/history: a job's executions, newest first, paginated, filterable by status and trigger."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scheduler.models import ExecutionStatus, ExecutionTrigger
from scheduler.services.jobs import job_delete
from tests.factories import ExecutionFactory, IntervalJobFactory
from tests.scheduler.api.conftest import history_url

pytestmark = pytest.mark.django_db


def ids(response) -> list[int]:
    return [execution["id"] for execution in response.json()["results"]]


def test_history_lists_the_jobs_executions_newest_first(client, interval_job, superuser):
    first = ExecutionFactory(job=interval_job, status=ExecutionStatus.SUCCESS)
    second = ExecutionFactory(job=interval_job, trigger=ExecutionTrigger.MANUAL, triggered_by=superuser)
    ExecutionFactory(job=IntervalJobFactory())  # another job's

    response = client.get(history_url(interval_job.pk))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert ids(response) == [second.pk, first.pk]
    newest = body["results"][0]
    assert newest["jobId"] == interval_job.pk
    assert newest["trigger"] == "manual" and newest["triggeredBy"] == superuser.username
    assert {"scheduledTime", "startedAt", "finishedAt", "durationMs", "errorMessage", "traceback"} <= set(newest)


def test_history_results_keep_their_keys(client, interval_job):
    ExecutionFactory(job=interval_job, status=ExecutionStatus.SUCCESS, result={"rows_deleted": 3, "someKey": [1]})

    (execution,) = client.get(history_url(interval_job.pk)).json()["results"]

    assert execution["result"] == {"rows_deleted": 3, "someKey": [1]}


def test_history_filters_by_status_and_trigger(client, interval_job):
    failed = ExecutionFactory(job=interval_job, status=ExecutionStatus.FAILED)
    manual = ExecutionFactory(job=interval_job, trigger=ExecutionTrigger.MANUAL)
    ExecutionFactory(job=interval_job, status=ExecutionStatus.SUCCESS)

    url = history_url(interval_job.pk)
    assert ids(client.get(url, {"status": "failed"})) == [failed.pk]
    assert ids(client.get(url, {"trigger": "manual"})) == [manual.pk]
    assert ids(client.get(url, {"status": "pending", "trigger": "manual"})) == [manual.pk]
    assert ids(client.get(url, {"status": "missed"})) == []


@pytest.mark.parametrize("params, field", [({"status": "exploded"}, "status"), ({"trigger": "cron"}, "trigger")])
def test_history_refuses_unknown_filter_values(client, interval_job, params, field):
    response = client.get(history_url(interval_job.pk), params)

    assert response.status_code == 400
    assert field in response.json()


def test_history_is_paginated(client, interval_job):
    for _ in range(7):
        ExecutionFactory(job=interval_job)

    page = client.get(history_url(interval_job.pk), {"pageSize": 3, "page": 3}).json()

    assert page["count"] == 7 and len(page["results"]) == 1 and page["next"] is None


def test_history_of_a_deleted_job_is_404(client, interval_job):
    ExecutionFactory(job=interval_job)
    job_delete(interval_job)

    assert client.get(history_url(interval_job.pk)).status_code == 404


@pytest.mark.parametrize("job_id", ["424242", "abc", str(2**70)])
def test_history_of_a_missing_job_is_404(client, job_id):
    response = client.get(history_url(job_id))

    assert response.status_code == 404
    assert "detail" in response.json()


@pytest.mark.parametrize("suffix", ["", "/"])
def test_trailing_slash_is_optional(client, interval_job, suffix):
    assert client.get(history_url(interval_job.pk) + suffix).status_code == 200


def test_history_query_count_does_not_grow_with_page_size(client, interval_job, superuser):
    for _ in range(30):
        ExecutionFactory(job=interval_job, trigger=ExecutionTrigger.MANUAL, triggered_by=superuser)

    def queries_for(page_size):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(history_url(interval_job.pk), {"pageSize": page_size})
        assert len(response.json()["results"]) == page_size
        return len(captured)

    assert queries_for(2) == queries_for(25)
    # A list that fits on one page is counted by reading that page: no more queries, one fewer.
    assert queries_for(30) < queries_for(2)

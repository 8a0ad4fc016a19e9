"""The browsable API (HTML) renders for a logged-in user on every endpoint."""

import pytest

from scheduler.services.jobs import job_trigger
from tests.scheduler.api.conftest import API, JOBS, action_url, history_url, job_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(client, superuser):
    client.force_authenticate(None)
    client.force_login(superuser)
    return client


def test_every_endpoint_renders_as_html(browser, interval_job):
    job_trigger(interval_job)
    paths = [
        JOBS,
        job_url(interval_job.pk),
        action_url(interval_job.pk),
        history_url(interval_job.pk),
        f"{API}/status",
        f"{API}/task-functions",
        f"{API}/cron/preview?expression=0+2+*+*+*",
    ]
    for path in paths:
        response = browser.get(path, HTTP_ACCEPT="text/html")
        assert response.status_code in (200, 405), path
        assert response["Content-Type"].startswith("text/html"), path


def test_html_shows_camel_case(browser, interval_job):
    response = browser.get(job_url(interval_job.pk), HTTP_ACCEPT="text/html")

    assert b"taskFunctionName" in response.content

"""Fixtures for the REST API tests: clients for each kind of user, and the API's URLs."""

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from scheduler.models import TaskFunction
from tests.factories import NOOP, UserFactory

API = "/api/v1/scheduler"
JOBS = f"{API}/jobs"


def job_url(job_id) -> str:
    return f"{JOBS}/{job_id}"


def action_url(job_id) -> str:
    return f"{JOBS}/{job_id}/action"


def history_url(job_id) -> str:
    return f"{JOBS}/{job_id}/history"


def user_with(*codenames, **fields):
    """A user holding the given permissions of the scheduler app (e.g. "view_scheduledjob")."""
    user = UserFactory(**fields)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="scheduler", codename__in=codenames))
    assert user.user_permissions.count() == len(codenames), codenames
    return user


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def anonymous_client():
    return APIClient()


@pytest.fixture
def superuser(db, django_user_model):
    return django_user_model.objects.create_superuser("admin", "admin@example.com", "pass")


@pytest.fixture
def client(superuser):
    """A superuser's client: everything is allowed, so tests see the API's own behaviour."""
    return client_for(superuser)


@pytest.fixture
def viewer(db):
    return user_with("view_scheduledjob", username="viewer")


@pytest.fixture
def changer(db):
    return user_with("view_scheduledjob", "change_scheduledjob", username="changer")


@pytest.fixture
def noop(db) -> TaskFunction:
    return TaskFunction.objects.get(name=NOOP)


@pytest.fixture
def interval_body(noop):
    """A valid POST /jobs body for an interval job."""
    return {"name": "every five", "taskFunctionId": noop.pk, "jobTypeId": 1, "intervalMinutes": 5}


@pytest.fixture
def cron_body(noop):
    """A valid POST /jobs body for a cron job."""
    return {
        "name": "nightly",
        "taskFunctionId": noop.pk,
        "jobTypeId": 2,
        "cronExpression": "0 2 * * *",
        "timezone": "UTC",
    }

"""Who may do what: anonymous, no permission, view only, change, trigger only, superuser; token and session auth."""

import pytest
from django.contrib.auth.models import Group, Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import IntervalJobFactory
from tests.scheduler.api.conftest import API, JOBS, action_url, client_for, history_url, job_url, user_with

pytestmark = pytest.mark.django_db


def request(client, operation, job, noop):
    """Perform one named operation on `job`; return the response."""
    body = {"name": job.name, "taskFunctionId": noop.pk, "jobTypeId": 1, "intervalMinutes": 7}
    if operation == "list":
        return client.get(JOBS)
    if operation == "retrieve":
        return client.get(job_url(job.pk))
    if operation == "history":
        return client.get(history_url(job.pk))
    if operation == "status":
        return client.get(f"{API}/status")
    if operation == "create":
        return client.post(JOBS, {**body, "name": "brand new"}, format="json")
    if operation == "put":
        return client.put(job_url(job.pk), body, format="json")
    if operation == "patch":
        return client.patch(job_url(job.pk), {"priority": 3}, format="json")
    if operation == "delete":
        return client.delete(job_url(job.pk))
    return client.post(action_url(job.pk), {"action": operation}, format="json")


READS = ["list", "retrieve", "history", "status"]
CHANGES = ["put", "patch", "pause", "resume", "enable", "disable"]
OPERATIONS = [*READS, "create", *CHANGES, "delete", "trigger"]
OK = {
    **{operation: 200 for operation in [*READS, *CHANGES]},
    "create": 201,
    "delete": 204,
    "trigger": 202,
}

# The permission matrix: which operations each kind of user may perform (all others are 403).
ALLOWED = {
    "no permission": set(),
    "view only": set(READS),
    "change": {*READS, *CHANGES},
    "change only (no view)": {*READS, *CHANGES},  # as in the admin, change implies read
    "add only": {"create"},
    "delete only": {"delete"},
    "trigger only": {"trigger"},
    "view and trigger": {*READS, "trigger"},
    "superuser": set(OPERATIONS),
}
PERMISSIONS = {
    "no permission": (),
    "view only": ("view_scheduledjob",),
    "change": ("view_scheduledjob", "change_scheduledjob"),
    "change only (no view)": ("change_scheduledjob",),
    "add only": ("add_scheduledjob",),
    "delete only": ("delete_scheduledjob",),
    "trigger only": ("trigger_scheduledjob",),
    "view and trigger": ("view_scheduledjob", "trigger_scheduledjob"),
}


@pytest.fixture
def make_user(django_user_model):
    def make(kind):
        if kind == "superuser":
            return django_user_model.objects.create_superuser("root", "root@example.com", "pass")
        return user_with(*PERMISSIONS[kind])

    return make


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("kind", list(ALLOWED))
def test_permission_matrix(make_user, noop, kind, operation):
    job = IntervalJobFactory(name="target")
    response = request(client_for(make_user(kind)), operation, job, noop)

    expected = OK[operation] if operation in ALLOWED[kind] else 403
    assert response.status_code == expected, (kind, operation, response.content)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_anonymous_requests_get_401_asking_for_a_token(anonymous_client, noop, operation):
    job = IntervalJobFactory(name="target")

    response = request(anonymous_client, operation, job, noop)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {"detail": "Authentication credentials were not provided."}


@pytest.mark.parametrize(
    "path",
    [f"{API}/task-functions", f"{API}/cron/preview?expression=0+2+*+*+*", f"{API}/status"],
)
def test_anonymous_reads_of_other_endpoints_get_401(anonymous_client, path):
    assert anonymous_client.get(path).status_code == 401


def test_permission_is_checked_before_the_body(db):
    viewer = client_for(user_with("view_scheduledjob"))
    job = IntervalJobFactory()

    assert viewer.post(JOBS, "{not json", content_type="application/json").status_code == 403
    assert viewer.post(action_url(job.pk), {"action": "bogus"}, format="json").status_code == 403


def test_a_user_with_change_gets_400_for_an_unknown_action(db):
    changer = client_for(user_with("change_scheduledjob"))
    job = IntervalJobFactory()

    assert changer.post(action_url(job.pk), {"action": "bogus"}, format="json").status_code == 400


def test_forbidden_trigger_says_which_permission_is_missing(db):
    changer = client_for(user_with("view_scheduledjob", "change_scheduledjob"))
    job = IntervalJobFactory()

    response = changer.post(action_url(job.pk), {"action": "trigger"}, format="json")

    assert response.status_code == 403
    assert response.json() == {"detail": "You do not have permission to trigger jobs."}


def test_permissions_through_a_group(db):
    group = Group.objects.create(name="operators")
    group.permissions.add(Permission.objects.get(codename="trigger_scheduledjob"))
    user = user_with()
    user.groups.add(group)

    response = client_for(user).post(action_url(IntervalJobFactory().pk), {"action": "trigger"}, format="json")

    assert response.status_code == 202


# --- authentication ----------------------------------------------------------------------------------


def test_token_authentication(db):
    user = user_with("view_scheduledjob")
    token = Token.objects.create(user=user)
    client = APIClient()

    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get(JOBS).status_code == 200

    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get(JOBS)
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}


def test_token_of_an_inactive_user_is_refused(db):
    user = user_with("view_scheduledjob", is_active=False)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")

    assert client.get(JOBS).status_code == 401


def test_session_authentication_with_csrf_protection(db, noop):
    user_with("view_scheduledjob", "add_scheduledjob", username="sessionuser")
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="sessionuser", password="pass")

    assert client.get(JOBS).status_code == 200
    body = {"name": "from the browser", "taskFunctionId": noop.pk, "jobTypeId": 1, "intervalMinutes": 1}
    response = client.post(JOBS, body, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]

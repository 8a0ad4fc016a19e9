"""GET /task-functions: the registered functions a job may run, read-only."""

import pytest

from scheduler.models import TaskFunction
from tests.scheduler.api.conftest import API, client_for, user_with

pytestmark = pytest.mark.django_db

TASK_FUNCTIONS = f"{API}/task-functions"


def test_lists_the_registered_functions(client):
    response = client.get(TASK_FUNCTIONS)

    assert response.status_code == 200
    results = response.json()["results"]
    by_name = {tf["name"]: tf for tf in results}
    assert {"tasks.functions.noop", "tasks.functions.sleep_offloaded"} <= set(by_name)
    offloaded = by_name["tasks.functions.sleep_offloaded"]
    assert offloaded["offload"] is True and offloaded["timeout"] == 3600 and offloaded["isActive"] is True
    assert set(offloaded) == {"id", "name", "description", "offload", "queue", "timeout", "isActive"}


def test_active_filter_hides_functions_no_longer_in_code(client):
    TaskFunction.objects.create(name="tasks.retired", is_active=False)

    all_names = [tf["name"] for tf in client.get(TASK_FUNCTIONS, {"pageSize": 100}).json()["results"]]
    active = [tf["name"] for tf in client.get(TASK_FUNCTIONS, {"active": "true", "pageSize": 100}).json()["results"]]
    inactive = [tf["name"] for tf in client.get(TASK_FUNCTIONS, {"active": "false"}).json()["results"]]

    assert "tasks.retired" in all_names and "tasks.retired" not in active
    assert inactive == ["tasks.retired"]


def test_retrieve_one_and_404_for_unknown(client, noop):
    assert client.get(f"{TASK_FUNCTIONS}/{noop.pk}").json()["name"] == noop.name
    assert client.get(f"{TASK_FUNCTIONS}/999999").status_code == 404
    assert client.get(f"{TASK_FUNCTIONS}/abc/").status_code == 404


def test_task_functions_are_read_only(client, noop):
    assert client.post(TASK_FUNCTIONS, {"name": "os.system"}, format="json").status_code == 405
    assert client.delete(f"{TASK_FUNCTIONS}/{noop.pk}").status_code == 405
    assert client.patch(f"{TASK_FUNCTIONS}/{noop.pk}", {"isActive": False}, format="json").status_code == 405


def test_invalid_active_value_is_a_400(client):
    response = client.get(TASK_FUNCTIONS, {"active": "sometimes"})

    assert response.status_code == 400 and "active" in response.json()


@pytest.mark.parametrize(
    "perms, status",
    [
        ((), 403),
        (("view_taskfunction",), 200),
        (("view_scheduledjob",), 200),
        (("add_scheduledjob",), 200),
        (("change_scheduledjob",), 200),
        (("delete_scheduledjob",), 403),
    ],
)
def test_readable_by_whoever_may_pick_a_function_for_a_job(perms, status):
    assert client_for(user_with(*perms)).get(TASK_FUNCTIONS).status_code == status

"""Tests of syncing the task registry into TaskFunction rows and of resolving a job's function."""

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from scheduler import registry
from scheduler.models import TaskFunction
from scheduler.registry import task_function
from scheduler.services.jobs import job_trigger
from scheduler.services.task_functions import TaskFunctionUnavailable, task_function_resolve, task_functions_sync
from tests.factories import IntervalJobFactory

pytestmark = pytest.mark.django_db

TEMP = "tests.temporary.report"


def register(name=TEMP, **options):
    def report(**kwargs):
        return "report"

    return task_function(name, **options)(report)


def unregister(name=TEMP):
    del registry._registry[name]


def test_database_mirrors_the_registry_after_migrate():
    """The post-migrate sync has already run for the test database."""
    for spec in registry.specs():
        row = TaskFunction.objects.get(name=spec.name)
        assert row.is_active
        assert (row.description, row.offload, row.queue, row.timeout) == (
            spec.description,
            spec.offload,
            spec.queue,
            spec.timeout,
        )


def test_sync_when_nothing_changed_does_nothing():
    assert task_functions_sync() == {"created": [], "updated": [], "deactivated": []}


def test_sync_creates_a_row_for_a_new_function(clean_registry):
    register(description="Builds a report.", offload=True, queue="reports", timeout=30)
    assert task_functions_sync() == {"created": [TEMP], "updated": [], "deactivated": []}
    row = TaskFunction.objects.get(name=TEMP)
    assert (row.description, row.offload, row.queue, row.timeout, row.is_active) == (
        "Builds a report.",
        True,
        "reports",
        30,
        True,
    )


def test_sync_updates_a_changed_function(clean_registry):
    register(description="v1", timeout=30)
    task_functions_sync()
    unregister()
    register(description="v2", queue="slow", timeout=60)
    assert task_functions_sync() == {"created": [], "updated": [TEMP], "deactivated": []}
    row = TaskFunction.objects.get(name=TEMP)
    assert (row.description, row.queue, row.timeout) == ("v2", "slow", 60)


def test_sync_deactivates_a_removed_function_and_never_deletes_it(clean_registry):
    register()
    task_functions_sync()
    count = TaskFunction.objects.count()
    unregister()
    assert task_functions_sync() == {"created": [], "updated": [], "deactivated": [TEMP]}
    assert TaskFunction.objects.count() == count
    assert TaskFunction.objects.get(name=TEMP).is_active is False
    assert not TaskFunction.objects.active().filter(name=TEMP).exists()
    # Already inactive: nothing more to report.
    assert task_functions_sync() == {"created": [], "updated": [], "deactivated": []}


def test_sync_reactivates_a_function_back_in_code(clean_registry):
    register()
    task_functions_sync()
    unregister()
    task_functions_sync()
    register()
    assert task_functions_sync() == {"created": [], "updated": [TEMP], "deactivated": []}
    assert TaskFunction.objects.get(name=TEMP).is_active is True


def test_removed_function_keeps_its_jobs_but_they_refuse_to_run(clean_registry):
    register()
    task_functions_sync()
    job = IntervalJobFactory(task_function=TaskFunction.objects.get(name=TEMP))
    unregister()
    task_functions_sync()
    job.refresh_from_db()
    assert job.task_function.name == TEMP and not job.task_function.is_active
    with pytest.raises(ValidationError) as exc:
        job_trigger(job)
    assert "inactive" in " ".join(exc.value.message_dict["task_function"])
    with pytest.raises(TaskFunctionUnavailable, match="inactive"):
        task_function_resolve(job.task_function.name, active=job.task_function.is_active)


def test_resolve_returns_the_registered_code():
    spec = task_function_resolve("tasks.functions.echo", active=True)
    assert spec.name == "tasks.functions.echo"
    assert spec.func(1, a=2) == {"args": [1], "kwargs": {"a": 2}}


def test_resolve_refuses_an_inactive_function_even_if_still_in_code():
    row = TaskFunction.objects.get(name="tasks.functions.noop")
    row.is_active = False
    with pytest.raises(TaskFunctionUnavailable) as exc:
        task_function_resolve(row.name, active=row.is_active)
    assert "'tasks.functions.noop' is inactive" in str(exc.value)
    assert "another task function" in str(exc.value)


def test_resolve_refuses_a_row_whose_code_is_not_registered():
    row = TaskFunction.objects.create(name="os.system")  # a row someone added by hand
    with pytest.raises(TaskFunctionUnavailable) as exc:
        task_function_resolve(row.name, active=row.is_active)
    assert "'os.system' is not registered" in str(exc.value)
    assert "sync_task_functions" in str(exc.value)


def test_sync_marks_a_hand_made_row_inactive():
    TaskFunction.objects.create(name="os.system")
    assert task_functions_sync()["deactivated"] == ["os.system"]
    assert TaskFunction.objects.get(name="os.system").is_active is False


def test_migrate_syncs_the_registry(clean_registry):
    register(description="added before migrate")
    TaskFunction.objects.filter(name="tasks.functions.echo").update(description="stale", is_active=False)
    call_command("migrate", verbosity=0, interactive=False)
    assert TaskFunction.objects.get(name=TEMP).description == "added before migrate"
    echo = TaskFunction.objects.get(name="tasks.functions.echo")
    assert echo.is_active and echo.description == registry.get("tasks.functions.echo").description

"""Tests of `manage.py sync_task_functions`: what it changes and what it prints."""

from io import StringIO

import pytest
from django.core.management import call_command

from scheduler.models import TaskFunction
from scheduler.registry import task_function

pytestmark = pytest.mark.django_db


def sync() -> str:
    out = StringIO()
    call_command("sync_task_functions", stdout=out)
    return out.getvalue()


def test_in_sync_reports_no_change():
    assert sync().strip() == "Task functions in sync: 0 created, 0 updated, 0 deactivated."


def test_lists_each_change_and_counts_them(clean_registry):
    task_function("tests.cmd.new", description="new one")(lambda: None)
    TaskFunction.objects.filter(name="tasks.functions.echo").update(description="out of date")
    TaskFunction.objects.create(name="tests.cmd.gone")
    output = sync()
    assert output.splitlines() == [
        "created: tests.cmd.new",
        "updated: tasks.functions.echo",
        "deactivated: tests.cmd.gone",
        "Task functions in sync: 1 created, 1 updated, 1 deactivated.",
    ]
    assert TaskFunction.objects.get(name="tests.cmd.new").is_active
    assert TaskFunction.objects.get(name="tests.cmd.gone").is_active is False
    assert sync().strip().endswith("0 created, 0 updated, 0 deactivated.")

"""`manage.py job_action`: job actions from the command line, audited as such; exit codes."""

import getpass
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from scheduler.enums import ChangeSource, JobState
from scheduler.models import JobAuditEntry
from scheduler.services.jobs import job_delete
from tests.factories import IntervalJobFactory

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("job_action", *args, stdout=out)
    return out.getvalue()


def test_pause_several_jobs_and_trigger_one():
    first, second = IntervalJobFactory(), IntervalJobFactory()
    output = run("pause", "--job-id", str(first.pk), "--job-id", str(second.pk), "--reason", "upgrade")
    assert f"Paused job {first.pk}" in output and f"Paused job {second.pk}" in output
    first.refresh_from_db()
    assert (first.state, first.pause_reason) == (JobState.PAUSED, "upgrade")
    entry = JobAuditEntry.objects.of_job(first.pk).first()
    assert (entry.action, entry.source) == ("pause", ChangeSource.COMMAND_LINE)
    assert entry.actor.startswith(getpass.getuser() + "@")
    assert "pending" in run("trigger", "--job-id", str(second.pk))


def test_a_missing_or_deleted_job_is_exit_1_and_nothing_changes():
    job = IntervalJobFactory()
    gone = IntervalJobFactory()
    job_delete(gone)
    with pytest.raises(CommandError) as error:
        run("pause", "--job-id", str(job.pk), "--job-id", str(gone.pk))
    assert error.value.returncode == 1 and str(gone.pk) in str(error.value)
    job.refresh_from_db()
    assert job.state == JobState.SCHEDULED


def test_bad_arguments_are_exit_2():
    job = IntervalJobFactory()
    with pytest.raises(CommandError) as error:
        run("pause", "--job-id", str(job.pk), "--reason", "x" * 1001)
    assert error.value.returncode == 2
    with pytest.raises(CommandError):  # argparse: an action not in the table
        run("explode", "--job-id", str(job.pk))


def test_an_import_is_audited_as_made_on_the_command_line(tmp_path):
    job = IntervalJobFactory(name="imported later")
    export = tmp_path / "jobs.json"
    call_command("export_jobs", "--output", str(export), stdout=StringIO())
    job.delete()
    call_command("import_jobs", str(export), stdout=StringIO())
    entry = JobAuditEntry.objects.filter(job__name="imported later").get()
    assert (entry.action, entry.source) == ("create", ChangeSource.COMMAND_LINE)
    assert entry.actor.startswith(getpass.getuser() + "@")

"""Tests of `manage.py export_jobs` and `import_jobs`: round trip, row-by-row report, all or nothing."""

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from scheduler.models import JobType, ScheduledJob, TaskFunction
from scheduler.registry import cron
from scheduler.services.calendars import calendar_save
from scheduler.services.jobs import job_delete, job_disable, job_pause
from tests.factories import CronJobFactory, IntervalJobFactory, declared_jobs

pytestmark = pytest.mark.django_db

JOB_COLUMNS = (
    "name",
    "description",
    "task_function_id",
    "job_type_id",
    *ScheduledJob.INTERVAL_FIELDS,
    "cron_expression",
    "timezone",
    "args",
    "kwargs",
    "priority",
    "max_instances",
    "misfire_grace_time",
    "coalesce",
    "history_limit",
    "overlap_policy",
    "max_retries",
    "retry_backoff",
    "timeout",
    "pause_after_failures",
    "is_enabled",
    "is_paused",
    "pause_reason",
)


def export(tmp_path, name="jobs.json") -> dict:
    path = tmp_path / name
    err = StringIO()
    call_command("export_jobs", "--output", str(path), stderr=err)
    assert err.getvalue().startswith("Exported ")
    return json.loads(path.read_text())


def import_file(path, *args) -> list[str]:
    out = StringIO()
    call_command("import_jobs", str(path), *args, stdout=out)
    return out.getvalue().splitlines()


def refused(path, *args) -> tuple[list[str], CommandError]:
    out = StringIO()
    with pytest.raises(CommandError) as exc:
        call_command("import_jobs", str(path), *args, stdout=out)
    assert exc.value.returncode == 2
    return out.getvalue().splitlines(), exc.value


def write(tmp_path, document, name="in.json"):
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def columns() -> dict:
    return {job.name: tuple(getattr(job, c) for c in JOB_COLUMNS) for job in ScheduledJob.objects.active()}


@pytest.fixture
def several_jobs():
    echo = TaskFunction.objects.get(name="tasks.functions.echo")
    IntervalJobFactory(
        name="every 90 s",
        interval_minutes=1,
        interval_seconds=30,
        task_function=echo,
        args=[1, "two"],
        kwargs={"nested": {"x": [1, 2]}},
        priority=-3,
        max_instances=4,
        misfire_grace_time=300,
        coalesce=False,
        history_limit=25,
        overlap_policy="buffer_all",
        max_retries=2,
        retry_backoff=30,
        timeout=120,
        pause_after_failures=3,
    )
    CronJobFactory(name="paris nightly", cron_expression="15 2 * * 1-5", timezone="Europe/Paris", description="ü")
    job_pause(CronJobFactory(name="paused one", cron_expression="*/10 * * * *"), reason="waiting on the vendor")
    job_disable(IntervalJobFactory(name="disabled one", interval_hours=2, interval_minutes=None))
    job_delete(IntervalJobFactory(name="deleted one"))


def test_export_wipe_import_gives_the_same_jobs(tmp_path, several_jobs):
    before = columns()
    first = export(tmp_path)
    assert {row["name"] for row in first["jobs"]} == set(before)  # every job not deleted, the built-in one too
    for job in ScheduledJob.objects.active():
        job_delete(job)
    assert not ScheduledJob.objects.active().exists()

    lines = import_file(tmp_path / "jobs.json")
    assert lines[-1] == f"Imported {len(before)} jobs: {len(before)} created, 0 changed, 0 unchanged."
    assert all(": created" in line for line in lines[:-1])
    assert columns() == before
    second = export(tmp_path, "again.json")
    assert second["jobs"] == first["jobs"]
    assert ScheduledJob.objects.active().get(name="paused one").next_run_time is not None


def test_the_export_names_functions_and_types_and_goes_to_standard_output(several_jobs):
    out = StringIO()
    call_command("export_jobs", stdout=out)
    document = json.loads(out.getvalue())
    assert (document["format"], document["version"]) == ("django-job-scheduler/jobs", 1)
    row = next(r for r in document["jobs"] if r["name"] == "every 90 s")
    assert (row["taskFunction"], row["jobType"], row["intervalSeconds"], row["kwargs"]) == (
        "tasks.functions.echo",
        "interval",
        30,
        {"nested": {"x": [1, 2]}},
    )
    paused = next(r for r in document["jobs"] if r["name"] == "paused one")
    assert (paused["isPaused"], paused["pauseReason"], paused["managedBy"]) == (True, "waiting on the vendor", None)


def test_import_matches_by_name_and_reports_each_row(tmp_path, several_jobs):
    document = export(tmp_path)
    rows = {row["name"]: row for row in document["jobs"]}
    rows["paris nightly"]["cronExpression"] = "0 4 * * *"
    rows["paused one"].update(isPaused=False, pauseReason="")
    rows["brand new"] = {**rows["every 90 s"], "name": "brand new"}
    document["jobs"] = list(rows.values())
    lines = import_file(write(tmp_path, document))
    number = {name: n for n, name in enumerate(rows, start=1)}
    assert f"row {number['paris nightly']} ('paris nightly'): changed: cronExpression" in lines
    assert f"row {number['paused one']} ('paused one'): changed: isPaused, pauseReason" in lines
    assert f"row {len(rows)} ('brand new'): created" in lines
    assert f"row {number['every 90 s']} ('every 90 s'): unchanged" in lines
    assert lines[-1] == f"Imported {len(rows)} jobs: 1 created, 2 changed, {len(rows) - 3} unchanged."
    assert ScheduledJob.objects.active().get(name="paris nightly").cron_expression == "0 4 * * *"
    assert not ScheduledJob.objects.active().get(name="paused one").is_paused


def test_one_invalid_row_means_nothing_is_imported(tmp_path, several_jobs):
    document = export(tmp_path)
    rows = {row["name"]: row for row in document["jobs"]}
    good = {**rows["every 90 s"], "name": "would be new"}
    changed = {**rows["paris nightly"], "cronExpression": "0 5 * * *"}
    bad_cron = {**rows["paris nightly"], "name": "bad cron", "cronExpression": "61 * * * *"}
    unknown_function = {**rows["every 90 s"], "name": "no such function", "taskFunction": "os.system"}
    document["jobs"] = [good, changed, bad_cron, unknown_function, {"name": "x", "jobType": "daily", "taskFunction": 1}]
    before = columns()
    lines, error = refused(write(tmp_path, document))
    assert lines[0] == "row 1 ('would be new'): would create"
    assert lines[1] == "row 2 ('paris nightly'): would change: cronExpression"
    assert lines[2].startswith("row 3 ('bad cron'): invalid: cronExpression: ")
    assert lines[3].startswith(
        "row 4 ('no such function'): invalid: taskFunction: no task function is named 'os.system'"
    )
    assert "jobType: 'daily' is not a job type" in lines[4] and "taskFunction: no task function" in lines[4]
    assert str(error) == "3 of 5 rows are invalid: nothing was imported (an import writes every row or none)."
    assert columns() == before


def test_rows_are_checked_for_shape(tmp_path, db):
    document = {
        "jobs": [
            {"name": "a", "taskFunction": "tasks.functions.noop", "jobType": "cron", "cronExpresion": "* * * * *"},
            {"name": "b", "jobType": "interval"},
            "not a row",
            {"name": "c", "taskFunction": "tasks.functions.noop", "jobType": "interval", "isPaused": "yes"},
            {"name": "d", "taskFunction": "tasks.functions.noop", "jobType": "interval", "intervalSeconds": 5},
            {"name": "d", "taskFunction": "tasks.functions.noop", "jobType": "interval", "intervalSeconds": 6},
            {"name": ["e"], "taskFunction": ["tasks"], "jobType": {"kind": "cron"}, "args": "x"},
        ]
    }
    lines, _ = refused(write(tmp_path, document))
    assert lines[0] == "row 1 ('a'): invalid: cronExpresion: unknown field"
    assert lines[1] == "row 2 ('b'): invalid: taskFunction: required"
    assert lines[2] == "row 3: invalid: a row must be a JSON object of job fields"
    assert lines[3] == "row 4 ('c'): invalid: isPaused: must be true or false"
    assert lines[5] == "row 6 ('d'): invalid: name: row 5 already has the job 'd'; each name once"
    assert lines[6].startswith("row 7: invalid: name: must be a string; taskFunction: no task function")
    assert "jobType: {'kind': 'cron'} is not a job type" in lines[6]


def test_a_dry_run_reports_and_writes_nothing(tmp_path, several_jobs):
    document = export(tmp_path)
    for job in ScheduledJob.objects.active():
        job_delete(job)
    lines = import_file(write(tmp_path, document), "--dry-run")
    assert all(": would create" in line for line in lines[:-1])
    assert lines[-1] == f"Dry run, nothing written: {len(document['jobs'])} to create, 0 to change, 0 unchanged."
    assert not ScheduledJob.objects.active().exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not JSON"),
        ("[]", 'A jobs export is a JSON object with a "jobs" list'),
        ('{"format": "other", "jobs": []}', "its format is 'other'"),
        ('{"version": 2, "jobs": []}', "this scheduler reads version 1"),
    ],
)
def test_a_file_that_is_not_an_export_is_refused(tmp_path, db, content, message):
    path = tmp_path / "in.json"
    path.write_text(content)
    _, error = refused(path)
    assert message in str(error)


def test_a_missing_file_is_refused(tmp_path, db):
    _, error = refused(tmp_path / "nowhere.json")
    assert "Cannot read" in str(error) and "No such file" in str(error)


def test_an_unwritable_output_is_refused(tmp_path, db):
    with pytest.raises(CommandError, match="Cannot write") as exc:
        call_command("export_jobs", "--output", str(tmp_path / "no" / "dir" / "jobs.json"))
    assert exc.value.returncode == 2


def test_an_import_cannot_change_what_code_declares_but_may_pause_it(tmp_path, clean_registry):
    declared_jobs(cron("0 2 * * *", name="declared nightly"))
    document = export(tmp_path)
    row = next(r for r in document["jobs"] if r["name"] == "declared nightly")
    assert row["managedBy"] == "tests.factories.declared_task"
    row["cronExpression"] = "0 3 * * *"
    lines, _ = refused(write(tmp_path, {"jobs": [row]}))
    assert lines[0].startswith("row 1 ('declared nightly'): invalid: cronExpression: This job is defined in code")
    row["cronExpression"], row["isPaused"] = "0 2 * * *", True
    assert import_file(write(tmp_path, {"jobs": [row]}))[0] == "row 1 ('declared nightly'): changed: isPaused"
    job = ScheduledJob.objects.active().get(name="declared nightly")
    assert job.is_paused and job.is_code_owned and job.job_type_id == JobType.CRON


def test_an_imported_job_that_code_declared_elsewhere_is_an_ordinary_job(tmp_path, db):
    row = {
        "name": "from elsewhere",
        "taskFunction": "tasks.functions.noop",
        "jobType": "interval",
        "intervalMinutes": 5,
        "managedBy": "other.module.function",
    }
    [line, _] = import_file(write(tmp_path, {"jobs": [row]}))
    assert line.startswith("row 1 ('from elsewhere'): created (was defined in code (other.module.function)")
    assert ScheduledJob.objects.active().get(name="from elsewhere").managed_by == ""


def test_when_a_job_runs_travels_in_the_export(tmp_path, db):
    calendar = calendar_save(name="France", timezone="Europe/Paris", dates=["2030-12-25"])
    run_at = timezone.now().replace(microsecond=0) + timedelta(days=3)
    IntervalJobFactory(name="once", job_type_id=JobType.DATE, interval_minutes=None, run_at=run_at, jitter_seconds=5)
    CronJobFactory(
        name="bounded",
        cron_expression="0 9 * * 1-5",
        start_at=datetime(2030, 1, 1, tzinfo=UTC),
        end_at=datetime(2030, 6, 1, tzinfo=UTC),
        jitter_seconds=120,
        max_runs=40,
        exclude_calendar=calendar,
    )
    fields = ("job_type_id", "run_at", "start_at", "end_at", "jitter_seconds", "max_runs", "exclude_calendar_id")
    before = {
        j.name: tuple(getattr(j, f) for f in fields) for j in ScheduledJob.objects.filter(name__in=["once", "bounded"])
    }
    document = export(tmp_path)
    row = next(r for r in document["jobs"] if r["name"] == "bounded")
    assert (row["jobType"], row["startAt"], row["excludeCalendar"], row["maxRuns"]) == (
        "cron",
        "2030-01-01T00:00:00+00:00",
        "France",
        40,
    )
    assert next(r for r in document["jobs"] if r["name"] == "once")["jobType"] == "date"
    for job in ScheduledJob.objects.active():
        job_delete(job)
    import_file(tmp_path / "jobs.json")
    after = {
        j.name: tuple(getattr(j, f) for f in fields)
        for j in ScheduledJob.objects.active().filter(name__in=["once", "bounded"])
    }
    assert after == before

    row["excludeCalendar"], row["name"] = "Mars", "bounded elsewhere"
    lines, _ = refused(write(tmp_path, {**document, "jobs": [row]}))
    assert any("excludeCalendar: no calendar is named 'Mars'" in line for line in lines)
    row["excludeCalendar"], row["endAt"] = "France", "2030-06-01T00:00:00"
    lines, _ = refused(write(tmp_path, {**document, "jobs": [row]}))
    assert any("endAt: '2030-06-01T00:00:00' has no UTC offset" in line for line in lines)

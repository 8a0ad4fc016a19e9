"""Tests of syncing jobs declared in code: create, change, remove, re-add, take over, prune, refuse."""

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from scheduler import registry
from scheduler.models import JobExecution, JobType, ScheduledJob, TaskFunction
from scheduler.registry import cron, interval, task_function
from scheduler.services.declarations import jobs_sync
from scheduler.services.jobs import job_disable, job_enable, job_pause, job_update
from tests.factories import IntervalJobFactory
from tests.scheduler.engine.conftest import engine_db  # noqa: F401 (a fixture)
from tests.scheduler.services.conftest import execution_of

pytestmark = pytest.mark.django_db

TASK = "tests.declared.report"
DECLARED_IN = "tests.scheduler.services.test_declarations.report"


def report(**kwargs):
    return "report"


def declare(*schedules):
    """Declare (or re-declare) the jobs of the test function; no schedules removes them all."""
    task_function(TASK, schedules=schedules)(report)


def nightly(expression="0 2 * * *", **options):
    options.setdefault("timezone", "Europe/Paris")
    return cron(expression, name="nightly report", kwargs={"full": True}, **options)


def job_named(name) -> ScheduledJob:
    return ScheduledJob.objects.active().get(name=name)


def test_missing_declared_jobs_are_created(clean_registry):
    declare(nightly(priority=5, max_instances=2), interval(minutes=5, name="poll", args=[1]))
    report_ = jobs_sync()
    assert report_.lines() == [
        f"created: nightly report (defined in code ({DECLARED_IN}))",
        f"created: poll (defined in code ({DECLARED_IN}))",
        "Declared jobs in sync: 2 created, 0 updated, 0 taken over, 0 re-declared, 0 disabled, 0 deleted, 0 unchanged.",
    ]
    job = job_named("nightly report")
    assert (job.job_type_id, job.cron_expression, job.timezone, job.kwargs) == (
        JobType.CRON,
        "0 2 * * *",
        "Europe/Paris",
        {"full": True},
    )
    assert (job.priority, job.max_instances, job.task_function.name) == (5, 2, TASK)
    assert job.managed_by == DECLARED_IN and job.is_code_owned
    assert job.managed_by_description == f"defined in code ({DECLARED_IN})"
    assert job.is_enabled and job.next_run_time is not None
    poll = job_named("poll")
    assert (poll.job_type_id, poll.interval_minutes, poll.args, poll.timezone) == (JobType.INTERVAL, 5, [1], "UTC")


def test_a_second_sync_changes_nothing(clean_registry):
    declare(nightly(), interval(minutes=5, name="poll"))
    jobs_sync()
    before = {job.pk: (job.updated_at, job.next_run_time) for job in ScheduledJob.objects.all()}
    report_ = jobs_sync()
    assert report_.lines()[-1].endswith(
        "0 created, 0 updated, 0 taken over, 0 re-declared, 0 disabled, 0 deleted, 2 unchanged."
    )
    assert not report_.changed
    assert {job.pk: (job.updated_at, job.next_run_time) for job in ScheduledJob.objects.all()} == before


def test_a_changed_declaration_updates_the_declared_fields_and_keeps_the_runtime_state(clean_registry):
    declare(nightly())
    jobs_sync()
    job = job_named("nightly report")
    job_pause(job, reason="maintenance window")
    execution_of(job)
    ScheduledJob.objects.filter(pk=job.pk).update(last_run_time=job.next_run_time)
    job.refresh_from_db()

    declare(nightly("30 3 * * *", timezone="UTC", description="Now at 03:30 UTC."))
    report_ = jobs_sync()
    assert report_.lines()[0] == "updated: nightly report (changed: description, cron_expression, timezone)"
    updated = job_named("nightly report")
    assert updated.pk == job.pk
    assert (updated.cron_expression, updated.timezone, updated.description) == (
        "30 3 * * *",
        "UTC",
        "Now at 03:30 UTC.",
    )
    # Runtime state: still paused with its reason, last run and history kept.
    assert (updated.is_paused, updated.pause_reason) == (True, "maintenance window")
    assert updated.last_run_time == job.last_run_time
    assert JobExecution.objects.filter(job=updated).count() == 1
    # The next run follows the new schedule (03:30 UTC), as after any schedule edit.
    assert (updated.next_run_time.hour, updated.next_run_time.minute) == (3, 30)


def test_a_description_change_leaves_the_next_run_alone(clean_registry):
    declare(nightly())
    jobs_sync()
    next_run = job_named("nightly report").next_run_time
    declare(nightly(description="Builds the nightly report."))
    jobs_sync()
    assert job_named("nightly report").next_run_time == next_run


def test_a_removed_declaration_disables_its_job_which_becomes_editable(clean_registry):
    declare(nightly(), interval(minutes=5, name="poll"))
    jobs_sync()
    declare(interval(minutes=5, name="poll"))
    report_ = jobs_sync()
    assert report_.lines()[0] == f"disabled: nightly report (its declaration in {DECLARED_IN} is gone)"
    job = job_named("nightly report")
    assert not job.is_enabled and job.next_run_time is None
    assert job.declaration_removed_at is not None and not job.is_code_owned
    assert job.managed_by_description == f"declaration removed from code (was {DECLARED_IN})"
    job_update(job, cron_expression="0 4 * * *")  # no longer code's: operators may edit it
    # A further sync leaves it alone.
    assert jobs_sync().lines()[-1].endswith("0 disabled, 0 deleted, 1 unchanged.")


def test_a_re_added_declaration_brings_back_the_same_job(clean_registry):
    declare(nightly())
    jobs_sync()
    job = job_named("nightly report")
    execution_of(job)
    declare()
    jobs_sync()
    declare(nightly("0 5 * * *"))
    report_ = jobs_sync()
    assert report_.lines()[0] == (
        f"re-declared: nightly report (defined in code ({DECLARED_IN}) again; changed: cron_expression)"
    )
    back = job_named("nightly report")
    assert back.pk == job.pk and back.is_code_owned
    assert back.is_enabled and back.next_run_time is not None and back.cron_expression == "0 5 * * *"
    assert JobExecution.objects.filter(job=back).count() == 1


def test_a_job_whose_function_left_the_code_is_disabled_too(clean_registry):
    declare(nightly())
    jobs_sync()
    del registry._registry[TASK]
    jobs_sync()
    assert not job_named("nightly report").is_enabled
    assert TaskFunction.objects.get(name=TASK).is_active is False


def test_prune_deletes_the_jobs_whose_declaration_is_gone(clean_registry):
    declare(nightly(), interval(minutes=5, name="poll"))
    jobs_sync()
    declare(interval(minutes=5, name="poll"))
    jobs_sync()  # disabled first, then pruned: both kinds of leftover go
    declare()
    report_ = jobs_sync(prune=True)
    assert [line.split(" (")[0] for line in report_.lines()[:-1]] == ["deleted: nightly report", "deleted: poll"]
    assert not ScheduledJob.objects.active().filter(name__in=["nightly report", "poll"]).exists()
    assert ScheduledJob.objects.filter(name="poll", is_active=False).exists()  # soft delete: history stays
    # Declared again after a prune: a new job.
    declare(interval(minutes=5, name="poll"))
    assert jobs_sync().count("created") == 1


def test_a_hand_made_job_with_a_declared_name_is_taken_over_keeping_its_state(clean_registry):
    hand_made = IntervalJobFactory(name="nightly report", interval_minutes=10)
    job_pause(hand_made, reason="by hand")
    declare(nightly())
    report_ = jobs_sync()
    assert report_.lines()[0].startswith(
        f"taken over: nightly report (made by hand before, now defined in code ({DECLARED_IN}); changed: "
    )
    job = job_named("nightly report")
    assert job.pk == hand_made.pk and job.is_code_owned
    assert (job.job_type_id, job.cron_expression, job.interval_minutes) == (JobType.CRON, "0 2 * * *", None)
    assert (job.is_paused, job.pause_reason) == (True, "by hand")


def test_enabled_is_only_where_a_new_job_starts(clean_registry):
    declare(nightly(enabled=False))
    jobs_sync()
    job = job_named("nightly report")
    assert not job.is_enabled
    job_enable(job)
    jobs_sync()
    assert job_named("nightly report").is_enabled  # the operator's choice stands
    job_disable(job)
    declare(nightly(enabled=True))
    jobs_sync()
    assert not job_named("nightly report").is_enabled


def test_an_invalid_declaration_is_reported_and_its_job_left_as_it_is(clean_registry):
    declare(nightly(), interval(minutes=5, name="poll"))
    jobs_sync()
    before = job_named("nightly report")
    declare(
        nightly("61 2 * * *"),
        interval(minutes=5, name="poll"),
        cron("0 1 * * *", name="bad zone", timezone="Mars/Olympus"),
    )
    report_ = jobs_sync()
    invalid = {change.name: change.detail for change in report_.invalid}
    assert set(invalid) == {"nightly report", "bad zone"}
    assert invalid["nightly report"].startswith(f"{DECLARED_IN}: cron_expression: ")
    assert "timezone: " in invalid["bad zone"]
    assert report_.lines()[-1].endswith("1 unchanged, 2 invalid.")
    after = job_named("nightly report")
    assert (after.cron_expression, after.is_enabled, after.updated_at) == ("0 2 * * *", True, before.updated_at)
    assert not ScheduledJob.objects.filter(name="bad zone").exists()


def test_a_declaration_for_a_job_code_cannot_hold_is_invalid(clean_registry):
    declare(interval(days=4000, name="too rare"), interval(seconds=1, name="fine", max_instances=11))
    report_ = jobs_sync()
    assert {change.name for change in report_.invalid} == {"too rare", "fine"}
    assert "max_instances" in dict((c.name, c.detail) for c in report_.invalid)["fine"]


def test_a_dry_run_reports_the_real_changes_and_writes_nothing(clean_registry):
    declare(nightly(), interval(minutes=5, name="poll"))
    dry = jobs_sync(dry_run=True)
    assert not ScheduledJob.objects.filter(name__in=["nightly report", "poll"]).exists()
    assert dry.lines()[:-1] == [line.replace("created", "would create") for line in jobs_sync().lines()[:-1]]
    assert dry.lines()[-1].startswith("Dry run, nothing written: declared jobs would be 2 created")
    declare()
    assert [c.kind for c in jobs_sync(dry_run=True, prune=True).changes] == ["deleted", "deleted"]
    assert ScheduledJob.objects.active().filter(name__in=["nightly report", "poll"], is_enabled=True).count() == 2


def test_migrate_syncs_the_declared_jobs(clean_registry):
    declare(nightly())
    call_command("migrate", verbosity=0, interactive=False)
    assert job_named("nightly report").is_code_owned


def test_declared_fields_of_a_code_owned_job_are_refused_by_the_services(clean_registry):
    declare(nightly())
    jobs_sync()
    job = job_named("nightly report")
    with pytest.raises(ValidationError) as exc:
        job_update(job, cron_expression="0 3 * * *", args=[1])
    assert set(exc.value.message_dict) == {"cron_expression", "args"}
    assert f"defined in code ({DECLARED_IN})" in exc.value.message_dict["args"][0]
    # The same values, and the fields code does not declare, may be sent.
    job_update(job, cron_expression="0 2 * * *", kwargs={"full": True}, history_limit=10)
    assert job_named("nightly report").history_limit == 10


@pytest.mark.usefixtures("engine_db")
def test_migrating_back_to_before_declared_jobs_skips_their_sync_and_forward_syncs_again(clean_registry):
    declare(nightly())
    loader = MigrationLoader(connection)
    [declared_jobs_migration] = [
        key for key in loader.graph.nodes if key[0] == "scheduler" and "declared_jobs" in key[1]
    ]
    [before] = [parent for parent in loader.graph.node_map[declared_jobs_migration].parents if parent[0] == "scheduler"]
    call_command("migrate", *before, verbosity=0, interactive=False)  # no error from the sync
    call_command("migrate", "scheduler", verbosity=0, interactive=False)
    assert job_named("nightly report").is_code_owned

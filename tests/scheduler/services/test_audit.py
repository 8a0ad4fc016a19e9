"""The audit trail: every job service and every job action records who, when, through what, what changed."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from scheduler.enums import ChangeSource, JobState
from scheduler.models import JobAuditEntry, ScheduledJob
from scheduler.services import job_actions
from scheduler.services.audit import audit_changes_words, change_source, job_change
from scheduler.services.claims import runs_claim
from scheduler.services.jobs import (
    job_create,
    job_delete,
    job_disable,
    job_enable,
    job_pause,
    job_resume,
    job_trigger,
    job_update,
)
from tests.factories import IntervalJobFactory, UserFactory

pytestmark = pytest.mark.django_db


def entries(job):
    return list(JobAuditEntry.objects.of_job(job.pk).order_by("at", "pk"))


def test_every_job_service_records_one_entry_with_who_and_what_changed(user):
    job = IntervalJobFactory(name="report", interval_minutes=5, user=user)
    job_update(job, user=user, priority=7, interval_minutes=10)
    job_update(job, user=user, priority=7)  # changes nothing: not recorded
    job_pause(job, user=user, reason="database migration")
    job_resume(job, user=user)
    job_disable(job, user=user)
    job_enable(job, user=user)
    execution = job_trigger(job, user=user)
    job_delete(job, user=user)

    trail = entries(job)
    assert [e.action for e in trail] == ["create", "edit", "pause", "resume", "disable", "enable", "trigger", "delete"]
    assert {e.actor for e in trail} == {user.username}
    assert {e.user_id for e in trail} == {user.pk}
    assert {e.source for e in trail} == {ChangeSource.CODE}  # no entry point declared one
    create, edit, pause, resume, disable, enable, trigger, delete = trail
    assert create.changes["name"] == {"before": None, "after": "report"}
    assert create.changes["interval_minutes"] == {"before": None, "after": 5}
    assert edit.changes["priority"] == {"before": 0, "after": 7}
    assert edit.changes["interval_minutes"] == {"before": 5, "after": 10}
    assert "name" not in edit.changes
    assert pause.changes["is_paused"] == {"before": False, "after": True}
    assert pause.changes["pause_reason"] == {"before": "", "after": "database migration"}
    assert pause.details == {"reason": "database migration"}
    assert resume.changes["is_paused"] == {"before": True, "after": False}
    assert disable.changes["is_enabled"] == {"before": True, "after": False}
    assert enable.changes["is_enabled"] == {"before": False, "after": True}
    assert trigger.details == {"execution_id": execution.pk}
    assert delete.changes["is_active"] == {"before": True, "after": False}
    assert edit.at <= pause.at <= delete.at <= timezone.now()
    assert "priority 0 -> 7" in audit_changes_words(edit)
    assert "reason: database migration" in audit_changes_words(pause)


def test_an_action_through_the_table_is_one_entry_named_by_the_table(user):
    job = IntervalJobFactory()
    with change_source(ChangeSource.API):
        job_actions.job_action_apply(job, "pause", user=user, reason="maintenance")
    (entry,) = entries(job)[1:]
    assert (entry.action, entry.source, entry.actor) == ("pause", ChangeSource.API, user.username)
    assert entry.details == {"reason": "maintenance"}


def test_a_new_action_in_the_table_is_audited_without_code_of_its_own(monkeypatch, user):
    """An action whose service knows nothing of the audit trail is still recorded, fields and all."""

    def bump_priority(job, *, user=None):
        ScheduledJob.objects.filter(pk=job.pk).update(priority=99)
        return ScheduledJob.objects.get(pk=job.pk)

    action = job_actions.JobAction(
        "bump",
        "scheduler.change_scheduledjob",
        bump_priority,
        "Bump",
        "Bumped",
        "Bump selected jobs",
        job_actions._LIVE,
    )
    monkeypatch.setitem(job_actions.JOB_ACTIONS, "bump", action)
    job = IntervalJobFactory()
    job_actions.job_action_apply(job, "bump", user=user)
    entry = entries(job)[-1]
    assert entry.action == "bump"
    assert entry.changes == {"priority": {"before": 0, "after": 99}}


def test_a_refused_change_records_nothing(user):
    job = IntervalJobFactory(name="taken")
    other = IntervalJobFactory(name="other")
    with pytest.raises(ValidationError):
        job_update(other, user=user, name="taken")
    job_delete(job, user=user)
    with pytest.raises(ValidationError):
        job_pause(job, user=user)
    assert [e.action for e in entries(other)] == ["create"]
    assert [e.action for e in entries(job)] == ["create", "delete"]


def test_source_and_actor_without_a_user_come_from_the_entry_point():
    job = IntervalJobFactory()
    with change_source(ChangeSource.COMMAND_LINE, actor="alice@ops-1"):
        job_pause(job)
    entry = entries(job)[-1]
    assert (entry.source, entry.actor, entry.user) == (ChangeSource.COMMAND_LINE, "alice@ops-1", None)
    with pytest.raises(ValueError):
        with change_source("telepathy"):
            pass


def test_code_sync_declares_its_source():
    with change_source(ChangeSource.CODE_SYNC, actor="sync_jobs"):
        job = IntervalJobFactory()
    entry = entries(job)[0]
    assert (entry.action, entry.source, entry.actor) == ("create", ChangeSource.CODE_SYNC, "sync_jobs")


def test_nested_changes_of_another_job_are_recorded_apart(user):
    first, second = IntervalJobFactory(), IntervalJobFactory()
    with job_change("pause", first.pk, user=user):
        job_pause(first, user=user)
        job_pause(second, user=user)
    assert [e.action for e in entries(first)] == ["create", "pause"]
    assert [e.action for e in entries(second)] == ["create", "pause"]


def test_the_scheduler_pausing_a_job_with_no_next_fire_time_is_audited():
    job = IntervalJobFactory()
    ScheduledJob.objects.filter(pk=job.pk).update(
        job_type_id=2, interval_minutes=None, cron_expression="0 0 30 2 */2", next_run_time=timezone.now()
    )
    runs_claim(instance_id="test-instance", now=timezone.now() + timedelta(seconds=1))
    job.refresh_from_db()
    assert job.state == JobState.PAUSED
    entry = entries(job)[-1]
    assert (entry.action, entry.source, entry.actor) == ("pause", ChangeSource.SCHEDULER, "the scheduler")
    assert entry.changes["is_paused"] == {"before": False, "after": True}
    assert "no next fire time" in entry.details["reason"]


def test_a_deleted_user_is_still_named():
    person = UserFactory(username="leaver")
    job = job_create(user=person, **IntervalJobFactory.build())
    person.delete()
    entry = entries(job)[0]
    assert (entry.user, entry.actor) == (None, "leaver")

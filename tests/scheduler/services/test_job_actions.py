"""The job actions table: which actions a user may take on a job in each state, and what they do."""

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied

from scheduler.enums import ExecutionTrigger, JobState
from scheduler.models import JobExecution
from scheduler.services.job_actions import (
    JOB_ACTION_NAMES,
    JOB_ACTION_NAMES_IN_WORDS,
    JOB_ACTIONS,
    job_action_apply,
    job_action_require,
    job_actions_available,
)
from scheduler.services.jobs import job_delete, job_disable, job_pause
from tests.factories import IntervalJobFactory, UserFactory

pytestmark = pytest.mark.django_db


def user_with(*codenames):
    user = UserFactory()
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return type(user).objects.get(pk=user.pk)  # a fresh instance: permissions are cached


@pytest.fixture
def operator():
    return user_with("change_scheduledjob", "trigger_scheduledjob")


def names(job, user):
    return [action.name for action in job_actions_available(job, user)]


def test_each_state_offers_the_actions_that_mean_something(operator):
    job = IntervalJobFactory()
    assert job.state == JobState.SCHEDULED and names(job, operator) == ["trigger", "pause", "disable"]
    job = job_pause(job)
    assert names(job, operator) == ["trigger", "resume", "disable"]
    job = job_disable(job)
    assert names(job, operator) == ["trigger", "enable"]
    job_delete(job)
    job.refresh_from_db()
    assert job.state == JobState.DELETED and names(job, operator) == []


def test_a_user_is_offered_only_what_their_permissions_allow():
    job = IntervalJobFactory()
    assert names(job, user_with("trigger_scheduledjob")) == ["trigger"]
    assert names(job, user_with("change_scheduledjob")) == ["pause", "disable"]
    assert names(job, user_with("view_scheduledjob")) == []


def test_require_names_the_refused_action():
    with pytest.raises(PermissionDenied, match="permission to pause jobs"):
        job_action_require(user_with("trigger_scheduledjob"), "pause")
    job_action_require(user_with("trigger_scheduledjob"), "trigger")


def test_apply_runs_the_service_and_passes_a_reason_only_to_pause(operator):
    job = IntervalJobFactory()
    paused = job_action_apply(job, "pause", user=operator, reason="maintenance")
    assert paused.is_paused and paused.pause_reason == "maintenance"
    resumed = job_action_apply(paused, "resume", user=operator, reason="ignored")
    assert not resumed.is_paused and resumed.pause_reason == ""
    run = job_action_apply(resumed, "trigger", user=operator)
    assert isinstance(run, JobExecution) and run.trigger == ExecutionTrigger.MANUAL and run.triggered_by == operator


def test_the_names_in_words_list_every_action_once():
    assert JOB_ACTION_NAMES == tuple(JOB_ACTIONS)
    assert JOB_ACTION_NAMES_IN_WORDS == "trigger, pause, resume, enable, disable or cancel"

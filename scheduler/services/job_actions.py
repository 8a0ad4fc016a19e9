"""The actions an operator takes on a job (trigger, pause, resume, enable, disable): one table that
the API, the admin and the dashboard all read for names, permissions, wording and availability."""

from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied

from scheduler.enums import JobState
from scheduler.models import JobExecution, ScheduledJob
from scheduler.permissions import CHANGE_JOB, TRIGGER_JOB
from scheduler.services.audit import job_change
from scheduler.services.jobs import job_disable, job_enable, job_pause, job_resume, job_trigger


@dataclass(frozen=True)
class JobAction:
    name: str
    permission: str
    service: Callable
    label: str  # on a button
    done: str  # after it, in the past tense ("Paused")
    admin_description: str
    # The job states in which the action means something (the dashboard offers it only there).
    states: frozenset[JobState]
    takes_reason: bool = False


_LIVE = frozenset({JobState.SCHEDULED, JobState.PAUSED, JobState.DISABLED})

JOB_ACTIONS: dict[str, JobAction] = {
    action.name: action
    for action in (
        JobAction("trigger", TRIGGER_JOB, job_trigger, "Trigger", "Asked for a run of", "Run selected jobs now", _LIVE),
        JobAction(
            "pause",
            CHANGE_JOB,
            job_pause,
            "Pause",
            "Paused",
            "Pause selected jobs",
            frozenset({JobState.SCHEDULED}),
            takes_reason=True,
        ),
        JobAction(
            "resume", CHANGE_JOB, job_resume, "Resume", "Resumed", "Resume selected jobs", frozenset({JobState.PAUSED})
        ),
        JobAction(
            "enable",
            CHANGE_JOB,
            job_enable,
            "Enable",
            "Enabled",
            "Enable selected jobs",
            frozenset({JobState.DISABLED}),
        ),
        JobAction(
            "disable",
            CHANGE_JOB,
            job_disable,
            "Disable",
            "Disabled",
            "Disable selected jobs",
            frozenset({JobState.SCHEDULED, JobState.PAUSED}),
        ),
    )
}
JOB_ACTION_NAMES = tuple(JOB_ACTIONS)
JOB_ACTION_NAMES_IN_WORDS = f"{', '.join(JOB_ACTION_NAMES[:-1])} or {JOB_ACTION_NAMES[-1]}"
JOB_ACTION_PERMISSIONS = frozenset(action.permission for action in JOB_ACTIONS.values())


def job_action_permitted(user, name: str) -> bool:
    return user.has_perm(JOB_ACTIONS[name].permission)


def job_action_require(user, name: str) -> None:
    """Raise PermissionDenied (saying which action) unless the user may take it."""
    if not job_action_permitted(user, name):
        raise PermissionDenied(f"You do not have permission to {name} jobs.")


def job_actions_available(job: ScheduledJob, user) -> list[JobAction]:
    """The actions this user may take on this job as it stands, in the table's order."""
    return [a for a in JOB_ACTIONS.values() if job.state in a.states and user.has_perm(a.permission)]


def job_action_apply(job: ScheduledJob, name: str, *, user=None, reason: str = "") -> ScheduledJob | JobExecution:
    """Take the action (the caller checked the permission): the job, or the run a trigger asked for.

    Audited here, so an action added to the table is recorded without code of its own (a service
    that records itself joins this entry).
    """
    action = JOB_ACTIONS[name]
    extra = {"reason": reason} if action.takes_reason else {}
    with job_change(name, job.pk, user=user, **extra) as change:
        outcome = action.service(job, user=user, **extra)
        if isinstance(outcome, JobExecution):
            change.details.setdefault("execution_id", outcome.pk)
    return outcome

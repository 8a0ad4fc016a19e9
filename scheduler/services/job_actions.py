"""The actions an operator takes on a job (trigger, pause, resume, enable, disable) or on one of its
runs (cancel): one table that the API, the admin and the dashboard all read for names,
permissions, wording and availability."""

from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError

from scheduler.enums import JobState
from scheduler.models import JobExecution, ScheduledJob
from scheduler.permissions import CANCEL_RUN, CHANGE_JOB, TRIGGER_JOB
from scheduler.services.cancels import execution_cancel
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
    takes_arguments: bool = False  # trigger: runs once with other args / kwargs
    # Acts on one run of the job (named by its execution id), not on the job itself.
    on_run: bool = False


def _run_cancel(job: ScheduledJob, *, user=None, execution_id: int) -> JobExecution:
    execution = JobExecution.objects.filter(pk=execution_id, job_id=job.pk).first()
    if execution is None:
        raise ValidationError({"execution_id": f"Job {job.pk} has no run with execution id {execution_id}."})
    return execution_cancel(execution, user=user)


_LIVE = frozenset({JobState.SCHEDULED, JobState.PAUSED, JobState.DISABLED})

JOB_ACTIONS: dict[str, JobAction] = {
    action.name: action
    for action in (
        JobAction(
            "trigger",
            TRIGGER_JOB,
            job_trigger,
            "Trigger",
            "Asked for a run of",
            "Run selected jobs now",
            _LIVE,
            takes_arguments=True,
        ),
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
        JobAction(
            "cancel",
            CANCEL_RUN,
            _run_cancel,
            "Cancel",
            "Asked to cancel",
            "Cancel selected runs",
            frozenset(JobState),
            on_run=True,
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
        raise PermissionDenied(
            f"You do not have permission to {name} {'runs' if JOB_ACTIONS[name].on_run else 'jobs'}."
        )


def job_actions_available(job: ScheduledJob, user) -> list[JobAction]:
    """The actions on the job itself this user may take on it as it stands, in the table's order."""
    return [a for a in JOB_ACTIONS.values() if not a.on_run and job.state in a.states and user.has_perm(a.permission)]


def job_action_apply(
    job: ScheduledJob,
    name: str,
    *,
    user=None,
    reason: str = "",
    execution_id: int | None = None,
    args: list | None = None,
    kwargs: dict | None = None,
) -> ScheduledJob | JobExecution:
    """Take the action (the caller checked the permission): the job, or the run it acted on or
    asked for (trigger, cancel)."""
    action = JOB_ACTIONS[name]
    extra = {}
    if action.takes_reason:
        extra["reason"] = reason
    if action.takes_arguments:
        extra.update(args=args, kwargs=kwargs)
    if action.on_run:
        if execution_id is None:
            raise ValidationError({"execution_id": f"Name the run to {name}: its execution id."})
        extra["execution_id"] = execution_id
    return action.service(job, user=user, **extra)

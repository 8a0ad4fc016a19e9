"""The actions an operator takes on a job (trigger, pause, resume, enable, disable) or on one of its
runs (cancel): one table that the API, the admin and the dashboard all read for names,
permissions, wording and availability."""

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q

from scheduler.enums import JobState
from scheduler.models import JobExecution, ScheduledJob
from scheduler.permissions import CANCEL_RUN, CHANGE_JOB, TRIGGER_JOB
from scheduler.querysets import JOB_STATE_FILTERS
from scheduler.services.audit import job_change
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
    asked for (trigger, cancel).

    Audited here, so an action added to the table is recorded without code of its own (a service
    that records itself joins this entry).
    """
    action = JOB_ACTIONS[name]
    extra, details = {}, {}
    if action.takes_reason:
        extra["reason"] = details["reason"] = reason
    if action.takes_arguments:
        extra.update(args=args, kwargs=kwargs)
        details.update({k: v for k, v in (("args", args), ("kwargs", kwargs)) if v is not None})
    if action.on_run:
        if execution_id is None:
            raise ValidationError({"execution_id": f"Name the run to {name}: its execution id."})
        extra["execution_id"] = details["execution_id"] = execution_id
    with job_change(name, job.pk, user=user, **details) as change:
        outcome = action.service(job, user=user, **extra)
        if isinstance(outcome, JobExecution):
            change.details.setdefault("execution_id", outcome.pk)
    return outcome


@dataclass
class ManyOutcome:
    """What one action on many jobs did."""

    done: list[ScheduledJob]
    refused: list[tuple[ScheduledJob, str]]
    # Jobs it applied to that this pass left alone (beyond the limit), counted up to a bound.
    remaining: int


def job_action_apply_many(jobs, name: str, *, user=None, reason: str = "", limit: int | None = None) -> ManyOutcome:
    """Take the action on the jobs of a queryset (the caller checked the permission), each through
    job_action_apply: one transaction and one audit entry per job.

    Only jobs in a state where the action means something are touched (pausing skips jobs already
    paused), so taking the same action again on the same filter carries on with the rest once
    `limit` (default SCHEDULER_BULK_ACTION_LIMIT) jobs have been done in one pass.
    """
    limit = settings.SCHEDULER_BULK_ACTION_LIMIT if limit is None else limit
    action = JOB_ACTIONS[name]
    if action.on_run:
        raise ValueError(f"{name} acts on a run, not on jobs.")
    applicable = Q()
    for state in action.states:
        applicable |= JOB_STATE_FILTERS[state]
    ids = list(jobs.filter(applicable).order_by("pk").values_list("pk", flat=True)[: limit + REMAINING_COUNTED])
    batch, rest = ids[:limit], ids[limit:]
    outcome = ManyOutcome(done=[], refused=[], remaining=len(rest))
    for job in ScheduledJob.objects.filter(pk__in=batch).order_by("pk"):
        try:
            job_action_apply(job, name, user=user, reason=reason)
        except ValidationError as exc:
            outcome.refused.append((job, " ".join(exc.messages)))
        else:
            outcome.done.append(job)
    return outcome


# Beyond the batch, jobs still to do are counted up to this many ("10,000 or more").
REMAINING_COUNTED = 10_000

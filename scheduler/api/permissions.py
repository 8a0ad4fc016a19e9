"""Who may do what through the API: Django's model permissions on jobs, chosen by viewset action,
and for a job action the permission the job actions table names."""

from rest_framework.permissions import BasePermission

from scheduler.permissions import (
    ADD_JOB,
    CHANGE_JOB,
    DELETE_JOB,
    READ_JOBS,
    TRIGGER_JOB,
    VIEW_CALENDAR,
    VIEW_TASK_FUNCTION,
    has_any_perm,
)
from scheduler.services.job_actions import JOB_ACTION_PERMISSIONS

# For each viewset action, the permissions of which the user needs at least one.
JOB_VIEWSET_PERMISSIONS = {
    "list": READ_JOBS,
    "retrieve": READ_JOBS,
    "metadata": READ_JOBS,
    "create": (ADD_JOB,),
    "update": (CHANGE_JOB,),
    "partial_update": (CHANGE_JOB,),
    "destroy": (DELETE_JOB,),
    # Narrowed to the one permission the requested action needs once the body is read.
    "job_action": tuple(sorted(JOB_ACTION_PERMISSIONS)),
    # Backfilled runs are manual runs of past fire times: the trigger permission.
    "backfill": (TRIGGER_JOB,),
}


def _authenticated(request) -> bool:
    return bool(request.user and request.user.is_authenticated)


class JobPermissions(BasePermission):
    """Model permissions on ScheduledJob, chosen by viewset action (view or change to read)."""

    def has_permission(self, request, view):
        if not _authenticated(request):
            return False
        if view.action is None:
            return True  # a method the endpoint does not have: let the view answer 405
        return has_any_perm(request.user, JOB_VIEWSET_PERMISSIONS.get(view.action, ()))


class CanReadJobs(BasePermission):
    """Read access to the scheduler's state: view (or change) permission on jobs."""

    def has_permission(self, request, view):
        return _authenticated(request) and has_any_perm(request.user, READ_JOBS)


class CanReadTaskFunctions(BasePermission):
    """Task functions are readable by whoever may view them or read or create jobs (to pick one)."""

    def has_permission(self, request, view):
        return _authenticated(request) and has_any_perm(request.user, (VIEW_TASK_FUNCTION, *READ_JOBS, ADD_JOB))


class CanReadCalendars(BasePermission):
    """Calendars are readable by whoever may view them, or read, create or change jobs (to pick one)."""

    def has_permission(self, request, view):
        return _authenticated(request) and has_any_perm(request.user, (VIEW_CALENDAR, *READ_JOBS, ADD_JOB))

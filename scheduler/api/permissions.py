"""Who may do what: Django's model permissions on jobs, plus the dedicated permission to trigger runs."""
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

VIEW_JOB = "scheduler.view_scheduledjob"
ADD_JOB = "scheduler.add_scheduledjob"
CHANGE_JOB = "scheduler.change_scheduledjob"
DELETE_JOB = "scheduler.delete_scheduledjob"
TRIGGER_JOB = "scheduler.trigger_scheduledjob"
VIEW_TASK_FUNCTION = "scheduler.view_taskfunction"

# As in the Django admin, the change permission also lets a user read.
READ_JOBS = (VIEW_JOB, CHANGE_JOB)

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
    "job_action": (CHANGE_JOB, TRIGGER_JOB),
}

# The permission each value of {"action": ...} needs.
JOB_ACTION_PERMISSIONS = {
    "trigger": TRIGGER_JOB,
    "pause": CHANGE_JOB,
    "resume": CHANGE_JOB,
    "enable": CHANGE_JOB,
    "disable": CHANGE_JOB,
}


def has_any_perm(user, perms) -> bool:
    return any(user.has_perm(perm) for perm in perms)


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


def require_job_action_permission(user, action: str) -> None:
    """Raise 403 unless the user holds the permission this job action needs."""
    if not user.has_perm(JOB_ACTION_PERMISSIONS[action]):
        raise PermissionDenied(f"You do not have permission to {action} jobs.")


class CanReadJobs(BasePermission):
    """Read access to the scheduler's state: view (or change) permission on jobs."""

    def has_permission(self, request, view):
        return _authenticated(request) and has_any_perm(request.user, READ_JOBS)


class CanReadTaskFunctions(BasePermission):
    """Task functions are readable by whoever may view them or read or create jobs (to pick one)."""

    def has_permission(self, request, view):
        return _authenticated(request) and has_any_perm(
            request.user, (VIEW_TASK_FUNCTION, *READ_JOBS, ADD_JOB)
        )

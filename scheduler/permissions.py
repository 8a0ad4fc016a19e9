"""The Django permissions the scheduler checks, by name, for the API, the admin and the dashboard."""

VIEW_JOB = "scheduler.view_scheduledjob"
ADD_JOB = "scheduler.add_scheduledjob"
CHANGE_JOB = "scheduler.change_scheduledjob"
DELETE_JOB = "scheduler.delete_scheduledjob"
TRIGGER_JOB = "scheduler.trigger_scheduledjob"
CANCEL_RUN = "scheduler.cancel_jobexecution"
VIEW_TASK_FUNCTION = "scheduler.view_taskfunction"

# As in the Django admin, the change permission also lets a user read.
READ_JOBS = (VIEW_JOB, CHANGE_JOB)


def has_any_perm(user, perms) -> bool:
    return any(user.has_perm(perm) for perm in perms)

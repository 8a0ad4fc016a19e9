"""The dashboard at /scheduler/: status, jobs, recent runs and charts; actions go through the job services."""

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from scheduler.enums import CANCELLABLE_STATUSES, FAILURE_STATUSES, RAN_STATUSES, ExecutionStatus
from scheduler.models import ExecutionSummary, JobExecution, ScheduledJob
from scheduler.paginators import MAX_PAGE_DEPTH, FleetPaginator
from scheduler.permissions import VIEW_JOB
from scheduler.selectors import database_now, job_audit_list, job_execution_list, job_list, scheduler_status
from scheduler.services.job_actions import (
    JOB_ACTIONS,
    job_action_apply,
    job_action_permitted,
    job_action_require,
    job_actions_available,
)
from scheduler.services.schedules import job_planned_starts, job_schedule_describe, job_upcoming_fire_times
from scheduler.views.charts import chart_start, durations_by_hour_chart, job_durations_chart, runs_by_hour_chart

REFRESH_SECONDS = 5
CHART_HOURS = 24
JOBS_PER_PAGE = 50
RECENT_EXECUTIONS = 25
HISTORY_PER_PAGE = 25
JOB_CHART_RUNS = 50
AUDIT_ENTRIES = 20


def _viewer(view):
    """Login first (redirect to the login page), then the read permission (403)."""
    return login_required(permission_required(VIEW_JOB, raise_exception=True)(view))


@_viewer
@require_safe
def dashboard(request):
    now = database_now()  # heartbeats and run times are on the database's clock
    since = now - timedelta(hours=CHART_HOURS)
    failures_only = request.GET.get("failures") == "1"
    # Every figure below reads a bounded set of rows: the newest executions through an index, the
    # summaries the database keeps, one page of jobs. None grows with the history.
    recent = JobExecution.objects.created_since(since).select_related("job", "triggered_by")
    if failures_only:
        recent = recent.filter(status__in=FAILURE_STATUSES)
    status = scheduler_status(now)
    jobs = FleetPaginator(job_list(), JOBS_PER_PAGE, count=status.jobs.total, max_depth=MAX_PAGE_DEPTH).get_page(
        request.GET.get("page")
    )
    for job in jobs:
        job.schedule_words = job_schedule_describe(job)
        job.actions = job_actions_available(job, request.user)
    hours = list(ExecutionSummary.objects.hourly(chart_start(now, CHART_HOURS)))
    context = {
        "status": status,
        "jobs": jobs,
        "recent_executions": recent[:RECENT_EXECUTIONS],
        "failures_only": failures_only,
        "runs_chart": runs_by_hour_chart(
            hours, now, CHART_HOURS, JobExecution.objects.in_progress_by_hour(chart_start(now, CHART_HOURS))
        ),
        "durations_chart": durations_by_hour_chart(hours, now, CHART_HOURS),
        "now": now,
        "refresh_seconds": REFRESH_SECONDS,
        "can_cancel": job_action_permitted(request.user, "cancel"),
        "cancellable_statuses": CANCELLABLE_STATUSES,
    }
    return render(request, "scheduler/dashboard.html", context)


@_viewer
@require_safe
def job_detail(request, job_id: int):
    # Deleted jobs keep their page: their history is still there, and old links lead here.
    job = get_object_or_404(
        ScheduledJob.objects.select_related("task_function", "job_type", "exclude_calendar"), pk=job_id
    )
    status_filter = request.GET.get("status", "")
    if status_filter not in ExecutionStatus.values:
        status_filter = ""
    history = job_execution_list(job)
    if status_filter:
        history = history.filter(status=status_filter)
    runs = job_execution_list(job).filter(status__in=RAN_STATUSES, duration_ms__isnull=False)[:JOB_CHART_RUNS]
    job.actions = job_actions_available(job, request.user)
    context = {
        "job": job,
        "schedule_words": job_schedule_describe(job),
        "upcoming": _upcoming(job),
        "history": FleetPaginator(history, HISTORY_PER_PAGE, max_depth=MAX_PAGE_DEPTH).get_page(
            request.GET.get("page")
        ),
        "status_filter": status_filter,
        "statuses": ExecutionStatus.values,
        "durations_chart": job_durations_chart(reversed(list(runs))),
        "audit": job_audit_list(job.pk)[:AUDIT_ENTRIES],
        "now": timezone.now(),
        "refresh_seconds": REFRESH_SECONDS,
        "can_cancel": job_action_permitted(request.user, "cancel"),
        "cancellable_statuses": CANCELLABLE_STATUSES,
    }
    return render(request, "scheduler/job_detail.html", context)


def _upcoming(job: ScheduledJob) -> list:
    """(fire time, planned start) of the next five runs; the start is later with jitter."""
    if not (job.can_fire and job.next_run_time):
        return []
    try:
        times = job_upcoming_fire_times(job, 5)
        return list(zip(times, job_planned_starts(job, times)))
    except (ValueError, OverflowError):  # a schedule with no further fire time: the engine pauses it
        return []


@login_required
@require_POST
def job_action(request, job_id: int, action: str):
    """Take a job action (services.job_actions); JSON for the page's script, else redirect."""
    if action not in JOB_ACTIONS:
        raise Http404(f"Unknown action {action!r}.")
    try:
        job_action_require(request.user, action)
    except PermissionDenied as exc:
        if _wants_json(request):
            return JsonResponse({"ok": False, "message": str(exc)}, status=403)
        raise
    job = get_object_or_404(ScheduledJob.objects.active().select_related("task_function"), pk=job_id)
    execution_id = request.POST.get("execution_id", "")
    try:
        outcome = job_action_apply(
            job,
            action,
            user=request.user,
            reason=request.POST.get("reason", "")[:1000],
            # ASCII digits only: str.isdigit() also accepts characters such as "²" that int() refuses.
            execution_id=int(execution_id)
            if execution_id.isascii() and execution_id.isdigit() and len(execution_id) < 19
            else None,
        )
    except ValidationError as exc:
        return _respond(request, job, ok=False, message=" ".join(exc.messages), status=400)
    return _respond(request, job, ok=True, message=_done_message(action, job, outcome))


def _done_message(action: str, job: ScheduledJob, outcome) -> str:
    if action == "trigger":
        return (
            f"Run requested for {job.name!r}: execution #{outcome.pk} is pending until a scheduler process picks it up."
        )
    if action == "cancel":
        if outcome.status == ExecutionStatus.CANCELLED:
            return f"Cancelled execution #{outcome.pk} of {job.name!r}: it will not start."
        return f"Asked execution #{outcome.pk} of {job.name!r} to stop: it ends cancelled once it has."
    return f"{JOB_ACTIONS[action].done} {job.name!r}."


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _respond(request, job, *, ok: bool, message: str, status: int = 200):
    if _wants_json(request):
        return JsonResponse({"ok": ok, "message": message}, status=status)
    (messages.success if ok else messages.error)(request, message)
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    if not safe:
        target = reverse("scheduler:job-detail", args=[job.pk])
    return redirect(target)

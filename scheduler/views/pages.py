"""The dashboard's working pages: the jobs list (search, filters, sort, pages) with actions on many jobs
at once behind a confirmation, an execution's page, and the runs due in the next hour."""

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST, require_safe

from scheduler.enums import ExecutionStatus, JobState
from scheduler.models import TaskFunction
from scheduler.permissions import VIEW_JOB
from scheduler.selectors import (
    JOB_SORTS,
    NEVER_RUN,
    count_up_to,
    database_now,
    execution_get,
    execution_logs,
    execution_timeline,
    job_page,
    job_search,
    runs_upcoming,
)
from scheduler.services.job_actions import (
    JOB_ACTIONS,
    job_action_apply_many,
    job_action_permitted,
    job_actions_available,
)
from scheduler.services.schedules import job_schedule_describe

JOBS_PER_PAGE = 50
COUNT_LIMIT = 1_000  # "1000+ jobs match": a count over a million jobs stays bounded
CONFIRM_SAMPLE = 20
FILTER_FIELDS = ("q", "state", "task", "last", "sort")
REFRESH_SECONDS = 5


def _viewer(view):
    return login_required(permission_required(VIEW_JOB, raise_exception=True)(view))


class JobFilterForm(forms.Form):
    """The jobs list's query string; a value it does not know is an error shown on the page."""

    q = forms.CharField(required=False, max_length=200, strip=True, label="Name contains")
    state = forms.ChoiceField(
        required=False, choices=[("", "any state")] + [(s, s) for s in JobState.values if s != JobState.DELETED]
    )
    task = forms.ModelChoiceField(
        required=False, queryset=TaskFunction.objects.order_by("name"), empty_label="any task function"
    )
    last = forms.ChoiceField(
        required=False,
        label="Last status",
        choices=[("", "any last status")] + [(s, s) for s in ExecutionStatus.values] + [(NEVER_RUN, "never run")],
    )
    sort = forms.ChoiceField(
        required=False,
        choices=[
            ("name", "name"),
            ("-name", "name, Z-A"),
            ("next_run", "next run, soonest"),
            ("-next_run", "next run, latest"),
            ("-last_run", "last run, newest"),
            ("last_run", "last run, oldest"),
            ("-priority", "priority, highest"),
            ("priority", "priority, lowest"),
        ],
    )

    def search(self):
        """The matching jobs, or those of the default filter when the query string is not valid."""
        data = self.cleaned_data if self.is_valid() else {}
        task = data.get("task")
        return job_search(
            search=data.get("q", ""),
            state=data.get("state", ""),
            task_function_id=task.pk if task else None,
            last_status=data.get("last", ""),
            sort=data.get("sort") or "name",
        )

    def query(self, **extra) -> str:
        values = {k: self.data.get(k, "") for k in FILTER_FIELDS if self.data.get(k)}
        values.update({k: v for k, v in extra.items() if v})
        return urlencode(values)


def _page_number(raw) -> int:
    try:
        return max(1, min(int(raw), 1_000_000))
    except (TypeError, ValueError):
        return 1


@_viewer
@require_safe
def jobs(request):
    form = JobFilterForm(request.GET)
    matching = form.search()
    page = _page_number(request.GET.get("page"))
    start = (page - 1) * JOBS_PER_PAGE
    # One row more than a page says whether there is a next one, without counting them all.
    rows = job_page(matching, start, JOBS_PER_PAGE + 1)
    has_next, rows = len(rows) > JOBS_PER_PAGE, rows[:JOBS_PER_PAGE]
    for job in rows:
        job.schedule_words = job_schedule_describe(job)
        job.actions = job_actions_available(job, request.user)
    total, more = count_up_to(matching, COUNT_LIMIT)
    context = {
        "form": form,
        "jobs": rows,
        "page": page,
        "first": start + 1,
        "last": start + len(rows),
        "total": total,
        "total_more": more,
        "previous_query": form.query(page=str(page - 1)) if page > 1 else None,
        "next_query": form.query(page=str(page + 1)) if has_next else None,
        "filter_query": form.query(),
        "filters": {k: request.GET.get(k, "") for k in FILTER_FIELDS},
        # Actions on a run (cancel) need the run: they are not offered on jobs.
        "bulk_actions": [
            a for a in JOB_ACTIONS.values() if not a.on_run and job_action_permitted(request.user, a.name)
        ],
        "sort_names": list(JOB_SORTS),
        "now": database_now(),
        "refresh_seconds": REFRESH_SECONDS,
    }
    return render(request, "scheduler/jobs.html", context)


@login_required
@require_POST
def jobs_action(request):
    """One action on the selected jobs, or on every job the filter matches: first a confirmation
    page saying how many and which, then (confirm=1) the action, job by job through the services."""
    name = request.POST.get("action", "")
    if name not in JOB_ACTIONS or JOB_ACTIONS[name].on_run:
        messages.error(request, "Choose an action.")
        return redirect(_back(request))
    if not job_action_permitted(request.user, name):
        raise PermissionDenied(f"You do not have permission to {name} jobs.")
    form = JobFilterForm(request.POST)
    all_matching = request.POST.get("all_matching") == "1"
    if all_matching and not form.is_valid():
        # Never widen "every job this filter matches" to every job because a filter was garbled.
        messages.error(request, "The filter is not valid; nothing was changed.")
        return redirect(reverse("scheduler:jobs"))
    if all_matching:
        selected = form.search()
    else:
        ids = [int(v) for v in request.POST.getlist("job") if v.isdigit() and len(v) < 19]
        selected = job_search().filter(pk__in=ids)
    if not all_matching and not selected.exists():
        messages.error(request, "Select at least one job, or choose every job that matches the filter.")
        return redirect(_back(request))
    action = JOB_ACTIONS[name]
    reason = request.POST.get("reason", "")[:1000]
    if request.POST.get("confirm") != "1":
        count, more = count_up_to(selected, COUNT_LIMIT)
        return render(
            request,
            "scheduler/jobs_confirm.html",
            {
                "action": action,
                "count": count,
                "count_more": more,
                "sample": list(selected[:CONFIRM_SAMPLE]),
                "all_matching": all_matching,
                "job_ids": [] if all_matching else list(selected.values_list("pk", flat=True)),
                "filters": {k: request.POST.get(k, "") for k in FILTER_FIELDS},
                "reason": reason,
                "back": _back(request),
                "now": database_now(),
            },
        )
    outcome = job_action_apply_many(selected, name, user=request.user, reason=reason)
    done = len(outcome.done)
    text = f"{action.done} {done} job{'s' if done != 1 else ''}."
    if name == "trigger" and done:
        text += " Their runs are pending until a scheduler process picks them up."
    if outcome.remaining:
        text += (
            f" {outcome.remaining:,}{'+' if outcome.remaining >= 10_000 else ''} more were left for now "
            f"(at most {done + len(outcome.refused):,} at once): take the action again to go on."
        )
    (messages.success if done or not outcome.refused else messages.error)(request, text)
    for job, why in outcome.refused[:10]:
        messages.error(request, f"{job.name}: {why}")
    return redirect(_back(request))


def _back(request) -> str:
    query = {k: request.POST.get(k) for k in FILTER_FIELDS if request.POST.get(k)}
    return reverse("scheduler:jobs") + (f"?{urlencode(query)}" if query else "")


@_viewer
@require_safe
def execution_detail(request, execution_id: int):
    execution = execution_get(execution_id)
    if execution is None:
        raise Http404("No execution with this id (history retention may have deleted it).")
    records, cut = execution_logs(execution)
    context = {
        "execution": execution,
        "job": execution.job,
        "timeline": execution_timeline(execution),
        "logs": records,
        "logs_cut": cut,
        "now": database_now(),
        "refresh_seconds": REFRESH_SECONDS,
    }
    return render(request, "scheduler/execution_detail.html", context)


@_viewer
@require_safe
def upcoming(request):
    now = database_now()
    window = runs_upcoming(now, within=timedelta(hours=1))
    for run in window.runs:
        run.job.schedule_words = getattr(run.job, "schedule_words", None) or job_schedule_describe(run.job)
    context = {"upcoming": window, "now": now, "refresh_seconds": REFRESH_SECONDS}
    return render(request, "scheduler/upcoming.html", context)

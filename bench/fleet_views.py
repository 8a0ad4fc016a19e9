"""Baselines of the fleet benchmark: for each page measured, the same rows read with a plain
`.values()` query and sent as JSON, with no count, template, annotation or permission check.
The gap between a page and its baseline is what the page adds to reading its rows."""

from datetime import timedelta

from django.http import Http404, JsonResponse
from django.utils import timezone

from scheduler.models import ExecutionSummary, JobExecution, ScheduledJob, SchedulerInstance

JOB_COLUMNS = ("id", "name", "cron_expression", "next_run_time", "last_run_time", "is_enabled", "is_paused")
RUN_COLUMNS = ("id", "job_id", "status", "trigger", "scheduled_time", "started_at", "duration_ms", "error_message")


def _jobs(offset=0, limit=50, ordering=("name", "pk")):
    return list(
        ScheduledJob.objects.filter(is_active=True).order_by(*ordering).values(*JOB_COLUMNS)[offset : offset + limit]
    )


def _runs(limit=25, offset=0, **filters):
    rows = JobExecution.objects.filter(**filters).order_by("-created_at", "-pk").values(*RUN_COLUMNS)
    return list(rows[offset : offset + limit])


def _recent(**filters):
    return _runs(created_at__gte=timezone.now() - timedelta(hours=24), **filters)


def baseline(request, page: str):
    job_id = int(request.GET.get("job", 0))
    execution_id = int(request.GET.get("execution", 0))
    pages = {
        "dashboard": lambda: {"jobs": _jobs(), "runs": _recent()},
        "dashboard-failures": lambda: {"jobs": _jobs(), "runs": _recent(status="failed")},
        "dashboard-deep": lambda: {"jobs": _jobs(offset=50 * 99), "runs": _recent()},
        "job": lambda: {
            "job": ScheduledJob.objects.filter(pk=job_id).values(*JOB_COLUMNS).first(),
            "runs": _runs(job_id=job_id),
        },
        "job-failed": lambda: {"runs": _runs(job_id=job_id, status="failed")},
        "job-deep": lambda: {"runs": _runs(job_id=job_id, offset=25 * 999)},
        "executions": lambda: _runs(limit=100),
        "executions-failed": lambda: _runs(limit=100, status="failed"),
        "executions-of-job": lambda: _runs(limit=100, job_id=job_id),
        "executions-deep": lambda: _runs(limit=100, offset=100 * 999),
        "execution": lambda: JobExecution.objects.filter(pk=execution_id).values().first(),
        "jobs": lambda: _jobs(limit=100),
        "jobs-search": lambda: list(
            ScheduledJob.objects.filter(is_active=True, name__icontains=request.GET.get("q", ""))
            .order_by("name", "pk")
            .values(*JOB_COLUMNS)[:100]
        ),
        "job-change": lambda: {
            "job": ScheduledJob.objects.filter(pk=job_id).values().first(),
            "runs": _runs(limit=20, job_id=job_id),
        },
        "status": lambda: {
            "instances": list(SchedulerInstance.objects.values("instance_id", "last_heartbeat")),
            "next": list(
                ScheduledJob.objects.schedulable()
                .exclude(next_run_time=None)
                .order_by("next_run_time")
                .values(*JOB_COLUMNS)[:10]
            ),
        },
        "api-jobs": lambda: _jobs(limit=20),
        "api-jobs-next": lambda: _jobs(limit=20, ordering=("next_run_time", "pk")),
        "api-job": lambda: ScheduledJob.objects.filter(pk=job_id).values().first(),
        "api-history": lambda: _runs(limit=20, job_id=job_id),
        "api-history-failed": lambda: _runs(limit=20, job_id=job_id, status="failed"),
        "metrics": lambda: list(
            ExecutionSummary.objects.filter(minute__gte=timezone.now() - timedelta(hours=1)).values()
        ),
    }
    if page not in pages:
        raise Http404(page)
    return JsonResponse({"rows": pages[page]()})

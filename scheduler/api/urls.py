"""URLs of the scheduler's REST API, mounted at /api/v1/scheduler/; the trailing slash is optional."""

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from scheduler.api.views import (
    CalendarViewSet,
    CronPreviewView,
    ExecutionDetailView,
    JobAuditView,
    JobHistoryView,
    JobPreviewView,
    JobViewSet,
    SchedulerStatusView,
    TaskFunctionViewSet,
    api_not_found,
)


class OptionalSlashRouter(SimpleRouter):
    """A router whose URLs match with or without the trailing slash (no redirect, so POST works)."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("jobs", JobViewSet, basename="job")
router.register("task-functions", TaskFunctionViewSet, basename="task-function")
router.register("calendars", CalendarViewSet, basename="calendar")

app_name = "scheduler-api"
urlpatterns = [
    re_path(r"^status/?$", SchedulerStatusView.as_view(), name="status"),
    re_path(r"^cron/preview/?$", CronPreviewView.as_view(), name="cron-preview"),
    re_path(r"^jobs/(?P<pk>[^/]+)/history/?$", JobHistoryView.as_view(), name="job-history"),
    re_path(r"^jobs/(?P<pk>[^/]+)/preview/?$", JobPreviewView.as_view(), name="job-preview"),
    re_path(r"^jobs/(?P<pk>[^/]+)/audit/?$", JobAuditView.as_view(), name="job-audit"),
    re_path(r"^executions/(?P<pk>[^/]+)/?$", ExecutionDetailView.as_view(), name="execution-detail"),
    *router.urls,
    re_path(r"", api_not_found),
]

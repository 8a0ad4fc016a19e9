"""Routes of the scheduler app's own pages: health, metrics and the dashboard."""

from django.urls import path

from scheduler.views import dashboard, health, metrics, pages

app_name = "scheduler"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("scheduler/", dashboard.dashboard, name="dashboard"),
    path("scheduler/jobs/", pages.jobs, name="jobs"),
    path("scheduler/jobs/action/", pages.jobs_action, name="jobs-action"),
    path("scheduler/executions/<int:execution_id>/", pages.execution_detail, name="execution-detail"),
    path("scheduler/upcoming/", pages.upcoming, name="upcoming"),
    path("scheduler/jobs/<int:job_id>/", dashboard.job_detail, name="job-detail"),
    path("scheduler/jobs/<int:job_id>/<slug:action>/", dashboard.job_action, name="job-action"),
]

"""Routes of the scheduler app's own pages: health, metrics and the dashboard."""
from django.urls import path

from scheduler.views import health, metrics

app_name = "scheduler"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
]

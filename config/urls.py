"""Root URL configuration."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/scheduler/", include("scheduler.api.urls")),
    path("api/v1/schema/", include("scheduler.api.schema_urls")),
    path("", include("scheduler.urls")),
]

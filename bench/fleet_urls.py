"""The product's URLs, and beside them the fleet benchmark's baselines under /bench-baseline/."""

from django.urls import include, path

from bench import fleet_views

urlpatterns = [
    path("bench-baseline/<slug:page>", fleet_views.baseline, name="bench-baseline"),
    path("", include("config.urls")),
]

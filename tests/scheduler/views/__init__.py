"""Tests of the web views: health, metrics and the dashboard."""

"""Filters the dashboard templates use: durations and ages in words a person reads at a glance."""
from django import template
from django.utils import timezone

from scheduler.views.charts import format_duration_ms

register = template.Library()


@register.filter
def duration(value_ms):
    """Milliseconds as '850 ms', '12.3 s', '4 min 2 s'."""
    return format_duration_ms(value_ms)


@register.filter
def age(value):
    """How long ago an aware datetime was, to the second: '4 s ago', '3 min ago'."""
    if value is None:
        return "-"
    seconds = max(0, int((timezone.now() - value).total_seconds()))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"

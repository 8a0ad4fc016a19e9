"""Filters the dashboard templates use: durations and ages in words a person reads at a glance."""
from django import template
from django.utils import timezone

from scheduler.durations import age_words, milliseconds_words

register = template.Library()


@register.filter
def duration(value_ms):
    """Milliseconds as '850 ms', '12.3 s', '4 min 2 s'."""
    return milliseconds_words(value_ms)


@register.filter
def age(value):
    """How long ago an aware datetime was, to the second: '4 s ago', '3 min ago'."""
    return age_words(value, timezone.now())

"""Filters the dashboard templates use: durations and ages in words a person reads at a glance."""

from django import template
from django.utils import timezone

from scheduler.durations import age_words, milliseconds_words
from scheduler.services.audit import audit_changes_words

register = template.Library()


@register.filter
def duration(value_ms):
    """Milliseconds as '850 ms', '12.3 s', '4 min 2 s'."""
    return milliseconds_words(value_ms)


@register.filter
def age(value, now=None):
    """How long ago an aware datetime was (by `now`, else this host's clock): '4 s ago', '3 min ago'."""
    return age_words(value, now or timezone.now())


@register.filter
def clock_offset(seconds):
    """A process's clock offset from the database: '+0.002 s', '-90.0 s'; '-' when not measured."""
    if seconds is None:
        return "-"
    return f"{seconds:+.3f} s" if abs(seconds) < 1 else f"{seconds:+.1f} s"


@register.filter
def audit_words(entry):
    """An audit entry's changes in words: 'priority 0 -> 5; reason: maintenance'."""
    return audit_changes_words(entry)

"""Query-string filters and ordering for job lists, job history and task functions."""

from django import forms
from django.core.validators import EMPTY_VALUES
from django.db.models import F
from django_filters import filters as base_filters
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema_field

from scheduler.models import ExecutionStatus, ExecutionTrigger, JobExecution, ScheduledJob, TaskFunction

MAX_ID = 2**63 - 1


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(filters.NumberFilter):
    """An integer id; anything else (including ids beyond 64 bits) is a 400, never a database error."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class StrictBooleanField(forms.Field):
    """true/false (or 1/0); anything else is an error, where a plain BooleanFilter would ignore it."""

    def to_python(self, value):
        if value in EMPTY_VALUES:
            return None
        lowered = str(value).strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise forms.ValidationError("Use true or false.", code="invalid")


class StrictBooleanFilter(base_filters.BooleanFilter):
    field_class = StrictBooleanField


class NullsLastOrderingFilter(filters.OrderingFilter):
    """OrderingFilter that puts empty values last in both directions and breaks ties by id."""

    def filter(self, qs, value):
        params = [param for param in value or () if param not in EMPTY_VALUES]
        if not params:
            return qs
        ordering = []
        for param in params:
            field_name = self.get_ordering_value(param)
            expression = F(field_name.lstrip("-"))
            descending = field_name.startswith("-")
            ordering.append(expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True))
        return qs.order_by(*ordering, "pk")


class JobFilter(filters.FilterSet):
    """Filters of GET /jobs; attribute names are the query parameters, camelCase like the JSON."""

    enabled = StrictBooleanFilter(field_name="is_enabled", help_text="true or false.")
    paused = StrictBooleanFilter(field_name="is_paused", help_text="true or false.")
    jobTypeId = IdFilter(field_name="job_type_id", help_text="1 (interval) or 2 (cron).")  # noqa: N815
    taskFunctionId = IdFilter(field_name="task_function_id")  # noqa: N815
    search = filters.CharFilter(
        field_name="name", lookup_expr="icontains", max_length=200, help_text="Part of the job name."
    )
    ordering = NullsLastOrderingFilter(
        fields=(("name", "name"), ("priority", "priority"), ("next_run_time", "nextRunTime")),
        field_labels={"next_run_time": "Next run time"},
        help_text="name, priority or nextRunTime; prefix with - for descending; comma-separate several.",
    )

    class Meta:
        model = ScheduledJob
        fields = []


class ExecutionFilter(filters.FilterSet):
    """Filters of GET /jobs/{id}/history."""

    status = filters.ChoiceFilter(choices=ExecutionStatus.choices)
    trigger = filters.ChoiceFilter(choices=ExecutionTrigger.choices)

    class Meta:
        model = JobExecution
        fields = []


class TaskFunctionFilter(filters.FilterSet):
    """Filters of GET /task-functions."""

    active = StrictBooleanFilter(
        field_name="is_active", help_text="true: only functions registered in code (the ones jobs may use)."
    )

    class Meta:
        model = TaskFunction
        fields = []

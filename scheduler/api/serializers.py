"""Shapes of the API's JSON: jobs in and out, job actions, executions, task functions, status, cron previews.

Field names are snake_case here; the camelCase parser and renderer translate them at the edge.
Input serializers check shape only (types, lengths, ranges of the columns); the service layer
decides what is valid.
"""

from collections.abc import Mapping

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from djangorestframework_camel_case.util import camelize_re, underscore_to_camel
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from scheduler.enums import ChangeSource, ExecutionStatus, ExecutionTrigger, OverlapPolicy
from scheduler.models import (
    MAX_INSTANCES_LIMIT,
    MAX_JITTER_SECONDS,
    MAX_RETRIES_LIMIT,
    Calendar,
    JobAuditEntry,
    JobExecution,
    JobType,
    ScheduledJob,
    TaskFunction,
)
from scheduler.selectors import execution_logs, execution_timeline
from scheduler.services.backfills import BACKFILL_POLICIES
from scheduler.services.cron import instant_parse
from scheduler.services.job_actions import JOB_ACTION_NAMES, JOB_ACTION_NAMES_IN_WORDS, JOB_ACTIONS
from scheduler.services.jobs import CODE_OWNED_FIELDS
from scheduler.services.schedules import job_schedule_describe

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MAX = 2**63 - 1
CRON_PREVIEW_MAX_COUNT = 100


def _default_timezone():
    return settings.TIME_ZONE


class StrictInputSerializer(serializers.Serializer):
    """Refuses keys it does not know, so a typo ("intervalMinute") is a 400 rather than ignored.

    Keys listed in `ignored_fields` (read-only fields of the resource) are accepted and dropped,
    so a client can edit the body of a GET and send it back.
    """

    ignored_fields: frozenset[str] = frozenset()

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields) - self.ignored_fields)
            if unknown:
                raise serializers.ValidationError({key: ["Unknown field."] for key in unknown})
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.DATETIME)
class InstantField(serializers.Field):
    """A moment given as ISO 8601 with an offset or Z (a naive time is refused: whose clock?)."""

    def to_internal_value(self, data):
        try:
            return instant_parse(data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None

    def to_representation(self, value):
        return serializers.DateTimeField().to_representation(value)


# --- jobs ------------------------------------------------------------------------------------------


class JobSerializer(serializers.ModelSerializer):
    """A scheduled job: what it runs, on which schedule, and its state."""

    # Built from selectors.job_list(), which annotates the last execution and joins the rest.

    task_function_id = serializers.IntegerField(read_only=True)
    task_function_name = serializers.CharField(source="task_function.name", read_only=True)
    job_type_id = serializers.IntegerField(read_only=True, help_text="1 = interval, 2 = cron, 3 = date (once).")
    job_type_name = serializers.CharField(source="job_type.name", read_only=True)
    schedule = serializers.SerializerMethodField(help_text="The schedule in words, e.g. 'every 5 minutes'.")
    last_execution_id = serializers.IntegerField(read_only=True, allow_null=True)
    last_execution_status = serializers.ChoiceField(choices=ExecutionStatus.choices, read_only=True, allow_null=True)
    args = serializers.ListField(child=serializers.JSONField(allow_null=True), read_only=True)
    kwargs = serializers.DictField(child=serializers.JSONField(allow_null=True), read_only=True)
    is_active = serializers.BooleanField(
        read_only=True, help_text="Always true here: a deleted job (soft delete) leaves every list; its history stays."
    )
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True)
    updated_by = serializers.CharField(source="updated_by.username", read_only=True, allow_null=True)
    exclude_calendar_id = serializers.IntegerField(read_only=True, allow_null=True)
    remaining_runs = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="Scheduled runs left before maxRuns disables the job; null without."
    )
    next_start_at = serializers.DateTimeField(
        source="start_time",
        read_only=True,
        allow_null=True,
        help_text="When the next run starts: nextRunTime, or later by its jitter.",
    )
    managed_by = serializers.SerializerMethodField(
        help_text="'defined in code (module.function)' for a job declared in code (its declared fields are "
        "read-only here), 'declaration removed from code (was module.function)' once its declaration is "
        "gone; null for jobs made through the admin, the API or an import."
    )
    fields_defined_in_code = serializers.SerializerMethodField(
        help_text="The fields a PUT or PATCH may not change (400), because code declares them; empty when "
        "the job is not defined in code. Actions (pause, resume, enable, disable, trigger) stay available."
    )

    class Meta:
        model = ScheduledJob
        fields = [
            "id",
            "name",
            "description",
            "task_function_id",
            "task_function_name",
            "job_type_id",
            "job_type_name",
            *ScheduledJob.INTERVAL_FIELDS,
            "cron_expression",
            "timezone",
            "schedule",
            "args",
            "kwargs",
            "priority",
            "max_instances",
            "misfire_grace_time",
            "coalesce",
            "history_limit",
            "overlap_policy",
            "max_retries",
            "retry_backoff",
            "timeout",
            "pause_after_failures",
            "run_at",
            "start_at",
            "end_at",
            "jitter_seconds",
            "max_runs",
            "remaining_runs",
            "exclude_calendar_id",
            "is_enabled",
            "disabled_reason",
            "is_paused",
            "pause_reason",
            "is_active",
            "managed_by",
            "fields_defined_in_code",
            "next_run_time",
            "next_start_at",
            "last_run_time",
            "last_execution_id",
            "last_execution_status",
            "created_at",
            "updated_at",
            "created_by",
            "updated_by",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField())
    def get_schedule(self, job) -> str:
        return job_schedule_describe(job)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_managed_by(self, job) -> str | None:
        return job.managed_by_description or None

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_fields_defined_in_code(self, job) -> list[str]:
        # Values are not renamed by the camelCase renderer (only keys are): name them as clients do.
        return [_camel(name) for name in CODE_OWNED_FIELDS] if job.is_code_owned else []


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _interval_field(unit: str):
    return serializers.IntegerField(
        min_value=0,
        max_value=INT32_MAX,
        allow_null=True,
        default=None,
        help_text=f"Interval jobs: {unit} part of the interval (at least one part > 0).",
    )


class JobWriteSerializer(StrictInputSerializer):
    """The body of POST, PUT and PATCH /jobs.

    POST and PUT take the whole job: fields left out get their defaults. PATCH changes only the
    fields sent; when it switches the job type, the other type's schedule fields are cleared.
    """

    ignored_fields = frozenset(JobSerializer.Meta.fields)

    name = serializers.CharField(max_length=200, help_text="Unique among active jobs.")
    description = serializers.CharField(max_length=10_000, allow_blank=True, default="")
    task_function_id = serializers.IntegerField(
        min_value=1, max_value=INT64_MAX, help_text="Id of an active task function (GET /task-functions)."
    )
    job_type_id = serializers.IntegerField(
        min_value=JobType.INTERVAL,
        max_value=JobType.DATE,
        help_text="1 = interval, 2 = cron, 3 = date (runs once, at runAt).",
        error_messages={
            "min_value": "Unknown job type: use 1 (interval), 2 (cron) or 3 (date).",
            "max_value": "Unknown job type: use 1 (interval), 2 (cron) or 3 (date).",
        },
    )
    interval_seconds = _interval_field("seconds")
    interval_minutes = _interval_field("minutes")
    interval_hours = _interval_field("hours")
    interval_days = _interval_field("days")
    cron_expression = serializers.CharField(
        max_length=120,
        allow_null=True,
        allow_blank=True,
        default=None,
        help_text="Cron jobs: standard 5-field cron (minute hour day-of-month month day-of-week).",
    )
    timezone = serializers.CharField(
        max_length=64, default=_default_timezone, help_text="IANA name; cron is evaluated in it."
    )
    args = serializers.ListField(
        child=serializers.JSONField(allow_null=True),
        default=list,
        help_text="Positional arguments of the task function (a JSON list).",
        error_messages={"not_a_list": 'args must be a JSON list, e.g. [1, "two"]; got {input_type}.'},
    )
    kwargs = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        default=dict,
        help_text="Keyword arguments of the task function (a JSON object; keys are passed as sent).",
        error_messages={"not_a_dict": 'kwargs must be a JSON object, e.g. {{"seconds": 5}}; got {input_type}.'},
    )
    priority = serializers.IntegerField(
        min_value=INT32_MIN, max_value=INT32_MAX, default=0, help_text="Higher runs first."
    )
    max_instances = serializers.IntegerField(min_value=1, max_value=MAX_INSTANCES_LIMIT, default=1)
    misfire_grace_time = serializers.IntegerField(
        min_value=1, max_value=INT32_MAX, default=60, help_text="Seconds a run may start late."
    )
    coalesce = serializers.BooleanField(default=True)
    history_limit = serializers.IntegerField(
        min_value=1,
        max_value=INT32_MAX,
        allow_null=True,
        default=None,
        help_text="Keep at most this many finished executions; null for no cap.",
    )
    overlap_policy = serializers.ChoiceField(
        choices=OverlapPolicy.values,
        default=OverlapPolicy.SKIP,
        help_text="When a run is due while max_instances runs are in progress: skip, buffer_one, buffer_all, "
        "cancel_other, terminate_other or allow_all.",
        error_messages={
            "invalid_choice": f'Unknown overlap policy "{{input}}": use {", ".join(OverlapPolicy.values)}.'
        },
    )
    max_retries = serializers.IntegerField(
        min_value=0, max_value=MAX_RETRIES_LIMIT, default=0, help_text="Times a failed run is run again."
    )
    retry_backoff = serializers.IntegerField(
        min_value=0,
        max_value=INT32_MAX,
        default=10,
        help_text="Seconds before the first retry; doubled for each further one, with jitter, capped.",
    )
    timeout = serializers.IntegerField(
        min_value=1,
        max_value=INT32_MAX,
        allow_null=True,
        default=None,
        help_text="Seconds a run may take; null for the task function's own timeout.",
    )
    pause_after_failures = serializers.IntegerField(
        min_value=1,
        max_value=INT32_MAX,
        allow_null=True,
        default=None,
        help_text="Pause the job after this many consecutive failed runs; null for never.",
    )
    run_at = InstantField(
        allow_null=True, default=None, help_text="Date jobs (type 3): the one moment the job runs (ISO 8601, offset)."
    )
    start_at = InstantField(allow_null=True, default=None, help_text="No fire time before this moment.")
    end_at = InstantField(
        allow_null=True, default=None, help_text="No fire time after this moment; then the job ends (disabled)."
    )
    jitter_seconds = serializers.IntegerField(
        min_value=0,
        max_value=MAX_JITTER_SECONDS,
        default=0,
        help_text="Each run starts up to this many seconds after its fire time, the same delay in every process.",
    )
    max_runs = serializers.IntegerField(
        min_value=1,
        max_value=INT32_MAX,
        allow_null=True,
        default=None,
        help_text="Disable the job after this many scheduled runs have started; null for no limit.",
    )
    exclude_calendar_id = serializers.IntegerField(
        min_value=1,
        max_value=INT64_MAX,
        allow_null=True,
        default=None,
        help_text="A calendar (GET /calendars) whose dates the job skips.",
    )
    is_enabled = serializers.BooleanField(default=True)

    # Per job type, the schedule fields of the other types (cleared by a PATCH that switches).
    OTHER_KINDS = {
        JobType.INTERVAL: ("cron_expression", "run_at"),
        JobType.CRON: (*ScheduledJob.INTERVAL_FIELDS, "run_at"),
        JobType.DATE: (*ScheduledJob.INTERVAL_FIELDS, "cron_expression"),
    }

    def validate(self, attrs):
        job = self.instance
        switches_type = (
            self.partial and job is not None and "job_type_id" in attrs and attrs["job_type_id"] != job.job_type_id
        )
        if switches_type:
            for field_name in self.OTHER_KINDS[attrs["job_type_id"]]:
                attrs.setdefault(field_name, None)
        return attrs


class JobActionSerializer(StrictInputSerializer):
    """The body of POST /jobs/{id}/action."""

    action = serializers.ChoiceField(
        choices=JOB_ACTION_NAMES,
        error_messages={"invalid_choice": f'Unknown action "{{input}}": use {JOB_ACTION_NAMES_IN_WORDS}.'},
    )
    reason = serializers.CharField(
        max_length=1000, allow_blank=True, default="", help_text="Why the job is paused (pause only)."
    )
    execution_id = serializers.IntegerField(
        min_value=1, max_value=INT64_MAX, required=False, help_text="The run to cancel (cancel only)."
    )
    args = serializers.ListField(
        child=serializers.JSONField(allow_null=True),
        required=False,
        help_text="Positional arguments for this run instead of the job's (trigger only).",
        error_messages={"not_a_list": 'args must be a JSON list, e.g. [1, "two"]; got {input_type}.'},
    )
    kwargs = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        required=False,
        help_text="Keyword arguments for this run instead of the job's (trigger only).",
        error_messages={"not_a_dict": 'kwargs must be a JSON object, e.g. {{"seconds": 5}}; got {input_type}.'},
    )

    def validate(self, attrs):
        action = JOB_ACTIONS[attrs["action"]]
        errors = {}
        if action.on_run and "execution_id" not in attrs:
            errors["execution_id"] = f"Name the run to {action.name}: its execution id."
        if not action.on_run and "execution_id" in attrs:
            errors["execution_id"] = f"{action.name} acts on the job, not on a run: leave executionId out."
        for field in ("args", "kwargs"):
            if field in attrs and not action.takes_arguments:
                errors[field] = f"Only trigger takes {field}."
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class AuditEntrySerializer(serializers.ModelSerializer):
    """One change to a job: who, when, through what, and the fields before and after."""

    user = serializers.CharField(source="user.username", read_only=True, allow_null=True)
    source = serializers.ChoiceField(
        choices=ChangeSource.choices, read_only=True, help_text="Through what: admin, api, dashboard, ..."
    )
    changes = serializers.SerializerMethodField(
        help_text="Each changed field (camelCase) with its value before and after: "
        '{"priority": {"before": 0, "after": 5}}.'
    )
    details = serializers.DictField(read_only=True, help_text="What the fields do not show: reason, executionId.")

    @extend_schema_field(serializers.DictField(child=serializers.DictField()))
    def get_changes(self, entry) -> dict:
        # The renderer leaves `changes` alone (JSON_CAMEL_CASE): the values are the job's data.
        return {camelize_re.sub(underscore_to_camel, name): change for name, change in entry.changes.items()}

    class Meta:
        model = JobAuditEntry
        fields = ["id", "action", "at", "user", "actor", "source", "changes", "details"]
        read_only_fields = fields


# --- executions ------------------------------------------------------------------------------------


class ExecutionSerializer(serializers.ModelSerializer):
    """One run of a job."""

    job_id = serializers.IntegerField(read_only=True)
    triggered_by = serializers.CharField(source="triggered_by.username", read_only=True, allow_null=True)
    status = serializers.ChoiceField(choices=ExecutionStatus.choices, read_only=True)
    trigger = serializers.ChoiceField(choices=ExecutionTrigger.choices, read_only=True)
    result = serializers.JSONField(read_only=True, allow_null=True, help_text="The task function's return value.")
    args = serializers.JSONField(read_only=True, allow_null=True, help_text="What the run was called with.")
    kwargs = serializers.JSONField(read_only=True, allow_null=True)
    retry_of = serializers.IntegerField(
        source="retry_of_id", read_only=True, allow_null=True, help_text="The execution this attempt retries."
    )
    cancel_requested = serializers.BooleanField(
        source="cancel_pending", read_only=True, help_text="Asked to stop and not ended yet."
    )
    cancel_requested_by = serializers.CharField(source="cancel_requested_by.username", read_only=True, allow_null=True)
    planned_start = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="When the fire time was planned to start (jitter); null without."
    )

    class Meta:
        model = JobExecution
        fields = [
            "id",
            "job_id",
            "status",
            "trigger",
            "scheduled_time",
            "planned_start",
            "created_at",
            "started_at",
            "finished_at",
            "duration_ms",
            "result",
            "error_message",
            "traceback",
            "instance_id",
            "hostname",
            "celery_task_id",
            "triggered_by",
            "args",
            "kwargs",
            "attempt",
            "retry_of",
            "cancel_requested",
            "cancel_requested_at",
            "cancel_requested_by",
            "cancel_reason",
        ]
        read_only_fields = fields


class BackfillSerializer(StrictInputSerializer):
    """The body of POST /jobs/{id}/backfill."""

    start = InstantField(help_text="The range starts after this moment (excluded).")
    end = InstantField(help_text="... and ends at this moment (included); not in the future.")
    overlap_policy = serializers.ChoiceField(
        choices=[str(policy) for policy in BACKFILL_POLICIES],
        default=OverlapPolicy.BUFFER_ALL,
        help_text="buffer_all: one after another within max_instances (default); allow_all: all at once.",
        error_messages={
            "invalid_choice": f'A backfill runs with overlap policy {" or ".join(BACKFILL_POLICIES)}, not "{{input}}".'
        },
    )
    dry_run = serializers.BooleanField(default=False, help_text="Count the runs without queueing them.")


class BackfillResultSerializer(serializers.Serializer):
    queued = serializers.IntegerField(help_text="Runs queued (or that would be, for a dry run).")
    already_ran = serializers.IntegerField(help_text="Fire times in the range that already ran (never run again).")
    dry_run = serializers.BooleanField()


# --- calendars -------------------------------------------------------------------------------------


class CalendarSerializer(serializers.ModelSerializer):
    """Dates on which the jobs referring to the calendar (excludeCalendarId) do not fire."""

    dates = serializers.ListField(child=serializers.CharField(), read_only=True, help_text='"YYYY-MM-DD", sorted.')

    class Meta:
        model = Calendar
        fields = ["id", "name", "timezone", "dates", "description", "created_at", "updated_at"]
        read_only_fields = fields


class LogRecordSerializer(serializers.Serializer):
    at = serializers.CharField(help_text="When it was logged (ISO 8601, UTC).")
    level = serializers.CharField()
    logger = serializers.CharField()
    message = serializers.CharField(help_text="With the traceback, for a record logged with one.")
    cut = serializers.IntegerField(required=False, help_text="Only on the marker: how many records were cut there.")


class TimelineStepSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=ExecutionStatus.choices)
    at = serializers.DateTimeField()


class ExecutionDetailSerializer(ExecutionSerializer):
    """One run with everything about it: its job, arguments, outcome, logs and the timeline of its states."""

    job_name = serializers.CharField(source="job.name", read_only=True)
    task_function_name = serializers.CharField(source="job.task_function.name", read_only=True)
    logs = serializers.SerializerMethodField(help_text="What the task function logged while it ran, oldest first.")
    logs_cut = serializers.SerializerMethodField(help_text="Log records left out to keep the run's log bounded.")
    timeline = serializers.SerializerMethodField(help_text="Each state the run entered, and when.")

    class Meta(ExecutionSerializer.Meta):
        fields = [
            *ExecutionSerializer.Meta.fields,
            "job_name",
            "task_function_name",
            "logs",
            "logs_cut",
            "timeline",
        ]
        read_only_fields = fields

    @extend_schema_field(LogRecordSerializer(many=True))
    def get_logs(self, execution) -> list:
        return execution_logs(execution)[0]

    @extend_schema_field(serializers.IntegerField())
    def get_logs_cut(self, execution) -> int:
        return execution_logs(execution)[1]

    @extend_schema_field(TimelineStepSerializer(many=True))
    def get_timeline(self, execution) -> list:
        return TimelineStepSerializer(execution_timeline(execution), many=True).data


# --- task functions --------------------------------------------------------------------------------


class TaskFunctionSerializer(serializers.ModelSerializer):
    """A function jobs may run; inactive ones are no longer registered in code."""

    class Meta:
        model = TaskFunction
        fields = ["id", "name", "description", "offload", "queue", "timeout", "is_active"]
        read_only_fields = fields


# --- status ----------------------------------------------------------------------------------------


class SchedulerInstanceSerializer(serializers.Serializer):
    instance_id = serializers.CharField()
    hostname = serializers.CharField()
    pid = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    last_heartbeat = serializers.DateTimeField(help_text="On the database's clock.")
    clock_offset = serializers.FloatField(
        allow_null=True,
        help_text="Seconds the database's clock is ahead of this process's host clock (null: not measured, "
        "e.g. SQLite). The process schedules by the database's clock either way.",
    )
    clock_skewed = serializers.BooleanField(
        help_text="The offset is larger than SCHEDULER_CLOCK_SKEW_WARNING: fix the host's time."
    )


class JobCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Active (not deleted) jobs.")
    enabled = serializers.IntegerField()
    disabled = serializers.IntegerField()
    paused = serializers.IntegerField()


class ExecutionCountsSerializer(serializers.Serializer):
    pending = serializers.IntegerField(help_text="Due and about to start, now.")
    waiting = serializers.IntegerField(help_text="Kept waiting for a slot by their job's overlap policy, now.")
    running = serializers.IntegerField(help_text="Running, now.")
    succeeded = serializers.IntegerField(help_text="Finished successfully within the window.")
    failed = serializers.IntegerField(help_text="Failed within the window.")
    timed_out = serializers.IntegerField(help_text="Ended past their timeout within the window.")
    cancelled = serializers.IntegerField(help_text="Cancelled within the window.")
    skipped = serializers.IntegerField(help_text="Skipped (max instances reached) within the window.")
    missed = serializers.IntegerField(help_text="Missed (later than the grace time) within the window.")
    window_hours = serializers.IntegerField(help_text="The window: the last this many hours.")


class NextRunSerializer(serializers.Serializer):
    job_id = serializers.IntegerField(source="pk")
    name = serializers.CharField()
    task_function_name = serializers.CharField(source="task_function.name")
    next_run_time = serializers.DateTimeField()
    priority = serializers.IntegerField()


class SchedulerStatusSerializer(serializers.Serializer):
    """What the scheduler's processes recorded in the database."""

    scheduler_alive = serializers.BooleanField(help_text="Whether any scheduler process is heartbeating.")
    instances = SchedulerInstanceSerializer(many=True, help_text="Scheduler processes alive now.")
    jobs = JobCountsSerializer()
    executions = ExecutionCountsSerializer()
    next_runs = NextRunSerializer(many=True, help_text="The next ten runs, soonest first.")
    generated_at = serializers.DateTimeField()


# --- cron preview ----------------------------------------------------------------------------------


AFTER_HELP = (
    "List the fire times after this moment: ISO 8601 with an offset or Z, e.g. 2026-11-01T01:30:00-04:00. Default: now."
)


class CronPreviewQuerySerializer(serializers.Serializer):
    """The query string of GET /cron/preview."""

    expression = serializers.CharField(max_length=200, help_text='A cron expression, e.g. "0 2 * * *".')
    timezone = serializers.CharField(
        max_length=64, default=_default_timezone, help_text="IANA name; default: the server's TIME_ZONE."
    )
    count = serializers.IntegerField(
        min_value=1, max_value=CRON_PREVIEW_MAX_COUNT, default=5, help_text="How many fire times to list."
    )
    after = InstantField(required=False, help_text=AFTER_HELP)


class CronPreviewSerializer(serializers.Serializer):
    """A cron expression checked and evaluated exactly as jobs are."""

    expression = serializers.CharField(help_text="The expression, normalised when valid.")
    timezone = serializers.CharField()
    valid = serializers.BooleanField()
    description = serializers.CharField(help_text="The schedule in words; empty when invalid.")
    next_run_times = serializers.ListField(child=serializers.DateTimeField(), help_text="In UTC.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Why the expression or timezone is invalid, by parameter name; empty when valid.",
    )


class JobPreviewQuerySerializer(serializers.Serializer):
    """The query string of GET /jobs/{id}/preview."""

    after = InstantField(
        required=False,
        help_text=AFTER_HELP.replace("Default: now.", "Default: from the job's next run."),
    )
    count = serializers.IntegerField(
        min_value=1, max_value=CRON_PREVIEW_MAX_COUNT, default=5, help_text="How many fire times to list."
    )


class JobPreviewSerializer(serializers.Serializer):
    """A saved job's next fire times, as the engine will fire them."""

    job_id = serializers.IntegerField()
    schedule = serializers.CharField(help_text="The schedule in words.")
    timezone = serializers.CharField()
    next_run_times = serializers.ListField(child=serializers.DateTimeField(), help_text="In UTC.")
    planned_starts = serializers.ListField(
        child=serializers.DateTimeField(),
        help_text="When each of those starts: the fire time itself, or later by the job's jitter.",
    )


# --- errors (documentation only) ---------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """The body of every error that is not about a particular field (401, 403, 404, 405, 415)."""

    detail = serializers.CharField()

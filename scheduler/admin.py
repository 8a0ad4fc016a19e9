"""The Django admin as the management interface; every write goes through the service layer."""

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.views.main import ORDER_VAR, PAGE_VAR, ChangeList
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef, Q
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join

from scheduler.enums import OverlapPolicy
from scheduler.models import (
    Calendar,
    JobAuditEntry,
    JobExecution,
    JobLease,
    JobType,
    NotificationChannel,
    NotificationDelivery,
    NotificationSubscription,
    ScheduledJob,
    SchedulerInstance,
    TaskFunction,
)
from scheduler.paginators import MAX_PAGE_DEPTH, FleetPaginator
from scheduler.selectors import execution_logs, execution_timeline, job_audit_list, job_count_active
from scheduler.services import jobs as job_services
from scheduler.services.audit import audit_changes_words
from scheduler.services.backfills import BACKFILL_POLICIES, job_backfill
from scheduler.services.calendars import calendar_dates_parse, calendar_delete, calendar_save
from scheduler.services.cron import instant_parse, zone_get
from scheduler.services.job_actions import JOB_ACTIONS, job_action_apply, job_action_permitted
from scheduler.services.notifications import (
    channel_save,
    channel_validate,
    deliveries_retry,
    notification_test_send,
    subscription_save,
)
from scheduler.services.schedules import job_planned_starts, job_schedule_describe, job_upcoming_fire_times

FORM_FIELDS = [f for f in job_services.EDITABLE_FIELDS]
# The form fields of what a declaration in code sets: shown disabled on a job code owns.
CODE_OWNED_FORM_FIELDS = [f.removesuffix("_id") for f in job_services.CODE_OWNED_FIELDS]
RECENT_EXECUTIONS = 20
AUDIT_ENTRIES = 20


class ReadOnly:
    """Rows written only by the scheduler itself: viewable, never edited by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class FleetChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        # A list on one page is shown from the queryset itself, read a second time; when the
        # paginator already read it to count it, show those rows.
        rows = self.paginator.first_page_rows
        if not self.multi_page and rows is not None:
            self.result_list = rows


class FleetAdmin(admin.ModelAdmin):
    """Change lists that stay fast with a million rows: no second count of the whole table, no
    facet counts, and FleetPaginator's cheap counts and bounded page depth."""

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = FleetPaginator

    def get_changelist(self, request, **kwargs):
        return FleetChangeList

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        return self.paginator(
            queryset,
            per_page,
            orphans,
            allow_empty_first_page,
            count=self.unfiltered_count(request),
            max_depth=MAX_PAGE_DEPTH,
        )

    def unfiltered_count(self, request) -> int | None:
        """The list's count when nothing narrows it, where it is known without counting."""
        return None

    @staticmethod
    def is_unfiltered(request) -> bool:
        return not set(request.GET) - {PAGE_VAR, ORDER_VAR}


class ReadOnlyAdmin(ReadOnly, FleetAdmin):
    pass


@admin.register(TaskFunction)
class TaskFunctionAdmin(ReadOnlyAdmin):
    list_display = ("name", "description", "offload", "queue", "timeout", "is_active")
    list_filter = ("is_active", "offload", "queue")
    search_fields = ("name", "description")


@admin.register(JobType)
class JobTypeAdmin(ReadOnlyAdmin):
    list_display = ("id", "name", "description")


class ScheduledJobForm(forms.ModelForm):
    args = forms.JSONField(required=False, initial=list, help_text='A JSON list, e.g. [1, "two"].')
    kwargs = forms.JSONField(required=False, initial=dict, help_text='A JSON object, e.g. {"seconds": 5}.')

    class Meta:
        model = ScheduledJob
        fields = FORM_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "task_function" in self.fields:
            current = self.instance.task_function_id if self.instance.pk else None
            self.fields["task_function"].queryset = TaskFunction.objects.filter(Q(is_active=True) | Q(pk=current))
        if "jitter_seconds" in self.fields:
            self.fields["jitter_seconds"].required = False  # empty: no jitter
        if self.instance.pk and self.instance.is_code_owned:
            # Disabled fields keep the saved value whatever is posted; the services refuse changes too.
            for name in CODE_OWNED_FORM_FIELDS:
                if name in self.fields:
                    self.fields[name].disabled = True
                    self.fields[name].help_text = f"Set in code: {self.instance.managed_by_description}."

    def clean(self):
        cleaned = super().clean()
        values = {name: cleaned.get(name) for name in FORM_FIELDS if name in self.fields}
        # The form hides the fields of the other job type; whatever they still hold is not meant.
        job_type = cleaned.get("job_type")
        if job_type is not None and job_type.pk == JobType.CRON:
            values.update({field: None for field in ScheduledJob.INTERVAL_FIELDS}, run_at=None)
        elif job_type is not None and job_type.pk == JobType.INTERVAL:
            values.update(cron_expression=None, run_at=None)
        elif job_type is not None and job_type.pk == JobType.DATE:
            values.update({field: None for field in ScheduledJob.INTERVAL_FIELDS}, cron_expression=None)
        if values.get("jitter_seconds") is None:
            values["jitter_seconds"] = 0
        values["args"] = [] if values.get("args") in (None, "") else values["args"]
        values["kwargs"] = {} if values.get("kwargs") in (None, "") else values["kwargs"]
        if self.errors:
            return cleaned
        try:
            job_services.job_check(self.instance if self.instance.pk else None, **values)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        self.service_values = values
        return cleaned

    def validate_unique(self):
        """Uniqueness and constraints are checked by the service layer, with clearer messages."""


class RecentExecutionsFormSet(forms.BaseInlineFormSet):
    def get_queryset(self):
        # Evaluated once: the formset asks for it per form, and a fresh slice is a fresh query.
        if not hasattr(self, "_recent"):
            recent = super().get_queryset().select_related("job").order_by("-created_at", "-pk")
            self._recent = list(recent[:RECENT_EXECUTIONS])
        return self._recent


class RecentExecutionsInline(ReadOnly, admin.TabularInline):
    model = JobExecution
    formset = RecentExecutionsFormSet
    verbose_name_plural = f"Recent executions (newest {RECENT_EXECUTIONS})"
    fields = ("execution_link", "status", "trigger", "scheduled_time", "started_at", "duration_ms", "error_message")
    readonly_fields = fields
    can_delete = False
    extra = 0
    max_num = 0
    show_change_link = False

    @admin.display(description="Execution")
    def execution_link(self, execution):
        return format_html('<a href="../../../jobexecution/{}/change/">#{}</a>', execution.pk, execution.pk)


@admin.register(ScheduledJob)
class ScheduledJobAdmin(FleetAdmin):
    form = ScheduledJobForm
    inlines = [RecentExecutionsInline]
    list_display = (
        "name",
        "task_name",
        "schedule",
        "next_run_time",
        "last_run_time",
        "last_status",
        "is_enabled",
        "disabled_reason",
        "is_paused",
        "defined_by",
    )
    list_filter = ("is_enabled", "is_paused", "job_type", "task_function")
    # The name only: each field searched is a scan of every job (a second or so for four fields at
    # a million jobs); the task function and the type have filters.
    search_fields = ("name",)
    list_select_related = ("task_function", "job_type", "exclude_calendar")
    ordering = ("name",)
    # Sorting a million jobs by a column without an index (or by the last run's status) reads
    # them all; the name has one.
    sortable_by = ("name",)
    readonly_fields = (
        "defined_by",
        "upcoming_fire_times",
        "schedule",
        "pause_state",
        "next_run_time",
        "last_run_time",
        "disabled_reason",
        "runs_done",
        "audit",
        "audit_trail",
    )
    actions = [f"{name}_jobs" for name, action in JOB_ACTIONS.items() if not action.on_run] + ["backfill_jobs"]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "defined_by",
                    "name",
                    "description",
                    "task_function",
                    "job_type",
                    "is_enabled",
                    "disabled_reason",
                )
            },
        ),
        (
            "Interval",
            {
                "classes": ("schedule-interval",),
                "fields": (("interval_days", "interval_hours", "interval_minutes", "interval_seconds"),),
            },
        ),
        ("Cron", {"classes": ("schedule-cron",), "fields": ("cron_expression",)}),
        ("Date (runs once)", {"classes": ("schedule-date",), "fields": ("run_at",)}),
        (
            "When it runs",
            {
                "classes": ("schedule-bounds",),
                "fields": (("start_at", "end_at"), "jitter_seconds", ("max_runs", "runs_done"), "exclude_calendar"),
            },
        ),
        (
            "Schedule",
            {
                "fields": (
                    "timezone",
                    "upcoming_fire_times",
                    "schedule",
                    "next_run_time",
                    "last_run_time",
                    "pause_state",
                )
            },
        ),
        ("Arguments", {"fields": ("args", "kwargs")}),
        (
            "Execution",
            {"fields": ("priority", "max_instances", "misfire_grace_time", "coalesce", "history_limit")},
        ),
        (
            "Run policies",
            {"fields": ("overlap_policy", "timeout", ("max_retries", "retry_backoff"), "pause_after_failures")},
        ),
        ("Audit trail", {"fields": ("audit", "audit_trail")}),
    )

    class Media:
        js = ("scheduler/admin/job_form.js",)

    def get_queryset(self, request):
        return super().get_queryset(request).active().with_last_execution()

    def unfiltered_count(self, request):
        return job_count_active() if self.is_unfiltered(request) else None

    def get_urls(self):
        preview = self.admin_site.admin_view(self.preview_view)
        return [path("preview/", preview, name="scheduler_scheduledjob_preview"), *super().get_urls()]

    # --- columns ---------------------------------------------------------------------------

    @admin.display(description="Task", ordering="task_function__name")
    def task_name(self, job):
        return job.task_function.name

    @admin.display(description="Schedule")
    def schedule(self, job):
        return job_schedule_describe(job) if job.pk else "-"

    @admin.display(description="Defined")
    def defined_by(self, job):
        return job.managed_by_description or "by hand (admin, API or import)"

    @admin.display(description="Last status")
    def last_status(self, job):
        return getattr(job, "last_execution_status", None) or "-"

    @admin.display(description="Paused")
    def pause_state(self, job):
        if not job.is_paused:
            return "no"
        return f"paused: {job.pause_reason}" if job.pause_reason else "paused"

    @admin.display(description="Scheduled runs started")
    def runs_done(self, job):
        if not job.pk:
            return "-"
        left = job.remaining_runs
        return f"{job.scheduled_runs}" + ("" if left is None else f" ({left} left)")

    @admin.display(description="Next five fire times")
    def upcoming_fire_times(self, job):
        if not job.pk:
            return format_html('<span id="job-preview">{}</span>', "Shown once the schedule is filled in.")
        try:
            times = job_upcoming_fire_times(job, count=5)
            starts = job_planned_starts(job, times)
        except (ValueError, ValidationError) as exc:
            return format_html('<span id="job-preview">{}</span>', str(exc))
        if not times:
            return format_html('<span id="job-preview">{}</span>', "None: the schedule has no fire time left.")
        return format_html(
            '<ul id="job-preview">{}</ul>',
            format_html_join(
                "",
                "<li>{}{}</li>",
                (
                    (_local(t, job.timezone), "" if start == t else f" (starts {_local(start, job.timezone)})")
                    for t, start in zip(times, starts)
                ),
            ),
        )

    @admin.display(description="Created / updated")
    def audit(self, job):
        if not job.pk:
            return "-"
        created = f"created {job.created_at:%Y-%m-%d %H:%M} by {job.created_by or '-'}"
        return f"{created}; updated {job.updated_at:%Y-%m-%d %H:%M} by {job.updated_by or '-'}"

    @admin.display(description=f"Changes (newest {AUDIT_ENTRIES})")
    def audit_trail(self, job):
        if not job.pk:
            return "-"
        entries = list(job_audit_list(job.pk)[:AUDIT_ENTRIES])
        if not entries:
            return "No changes recorded."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{entry.at:%Y-%m-%d %H:%M:%S}",
                    entry.action,
                    entry.actor or "-",
                    entry.get_source_display(),
                    audit_changes_words(entry),
                )
                for entry in entries
            ),
        )
        return format_html(
            '<table id="audit-trail"><thead><tr><th>When</th><th>Action</th><th>Who</th><th>Through</th>'
            "<th>What changed</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    # --- writes through the service layer -------------------------------------------------------

    def save_model(self, request, obj, form, change):
        values = getattr(form, "service_values", {})
        saved = (
            job_services.job_update(obj, user=request.user, **values)
            if change
            else job_services.job_create(user=request.user, **values)
        )
        obj.pk = saved.pk
        obj.__dict__.update({k: v for k, v in saved.__dict__.items() if not k.startswith("_")})

    def has_delete_permission(self, request, obj=None):
        # A job code owns goes when its declaration does (sync_jobs --prune), not from here.
        return super().has_delete_permission(request, obj) and not (obj is not None and obj.is_code_owned)

    def delete_model(self, request, obj):
        job_services.job_delete(obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for job in queryset:
            job_services.job_delete(job, user=request.user)

    def get_deleted_objects(self, objs, request):
        """Delete is a soft delete: the job leaves the lists, its history stays. Jobs code owns are
        listed as protected, which makes the admin refuse the whole deletion."""
        to_delete = [format_html("Job: {}", job.name) for job in objs if not job.is_code_owned]
        protected = [
            format_html("Job: {} ({})", job.name, job_services.job_delete_refusal(job))
            for job in objs
            if job.is_code_owned
        ]
        return to_delete, {ScheduledJob._meta.verbose_name_plural: len(to_delete)}, set(), protected

    # --- actions ------------------------------------------------------------------------------

    def _apply(self, request, queryset, name):
        done = 0
        reason = f"paused in the admin by {request.user}"
        for job in queryset:
            try:
                job_action_apply(job, name, user=request.user, reason=reason)
                done += 1
            except ValidationError as exc:
                self.message_user(request, f"{job.name}: {'; '.join(exc.messages)}", messages.ERROR)
        if done:
            verb = JOB_ACTIONS[name].done
            self.message_user(request, f"{verb} {done} job{'s' if done != 1 else ''}.", messages.SUCCESS)

    @admin.action(description="Backfill selected jobs (run past fire times)...", permissions=["job_trigger"])
    def backfill_jobs(self, request, queryset):
        """An intermediate page: the range and the options, then the backfill of each job."""
        form = BackfillForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            data = form.cleaned_data
            for job in queryset:
                try:
                    outcome = job_backfill(
                        job,
                        data["start"],
                        data["end"],
                        user=request.user,
                        overlap_policy=data["overlap_policy"],
                        dry_run=data["dry_run"],
                    )
                except ValidationError as exc:
                    self.message_user(request, f"{job.name}: {'; '.join(exc.messages)}", messages.ERROR)
                    continue
                verb = "would queue" if data["dry_run"] else "queued"
                self.message_user(
                    request,
                    f"{job.name}: {verb} {outcome.queued} backfilled run{'s' if outcome.queued != 1 else ''} "
                    f"({outcome.already_ran} of the range's fire times had already run).",
                    messages.SUCCESS,
                )
            return None  # back to the list, with the messages
        context = {
            **self.admin_site.each_context(request),
            "title": "Backfill: run the fire times of a past range",
            "opts": self.model._meta,
            "jobs": queryset,
            "form": form,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "action": "backfill_jobs",
        }
        return TemplateResponse(request, "admin/scheduler/scheduledjob/backfill.html", context)

    # --- live preview for the edit form ---------------------------------------------------------

    def preview_view(self, request):
        """Next five fire times of the schedule being edited (JSON), computed like the engine does."""
        if not self.has_view_permission(request):
            return JsonResponse({"error": "permission denied"}, status=403)
        params = request.GET
        fields = {"job_type_id": params.get("job_type") or None, "timezone": params.get("timezone") or "UTC"}
        # The form's date and time boxes, read in the admin's timezone as the form reads them.
        moments = {name: _form_moment(params.get(f"{name}_0"), params.get(f"{name}_1")) for name in MOMENT_FIELDS}
        if params.get("job_type") == str(JobType.DATE):
            fields["run_at"] = moments["run_at"]
        else:
            fields.update(start_at=moments["start_at"], end_at=moments["end_at"])
        if params.get("job_type") == str(JobType.CRON):
            fields["cron_expression"] = params.get("cron_expression", "")
        elif params.get("job_type") != str(JobType.DATE):
            for field in ScheduledJob.INTERVAL_FIELDS:
                value = params.get(field) or None
                fields[field] = int(value) if value and value.isdigit() else (None if value is None else value)
        try:
            description, times = job_services.job_schedule_preview(count=5, **fields)
        except ValidationError as exc:
            return JsonResponse({"errors": exc.message_dict}, status=400)
        return JsonResponse({"description": description, "fireTimes": [_local(t, fields["timezone"]) for t in times]})


MOMENT_FIELDS = ("run_at", "start_at", "end_at")


def _form_moment(day, clock_time):
    """An aware moment from the admin's split date and time boxes, or None if they are not one."""
    parsed = parse_datetime(f"{(day or '').strip()} {(clock_time or '').strip() or '00:00:00'}")
    if parsed is None:
        return None
    return timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed


class InstantFormField(forms.CharField):
    """A moment as ISO 8601 with an offset or Z, as the API takes it."""

    def clean(self, value):
        value = super().clean(value)
        try:
            return instant_parse(value)
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from None


class BackfillForm(forms.Form):
    start = InstantFormField(
        help_text="Excluded: the range starts after it. ISO 8601 with an offset, e.g. 2026-01-01T00:00:00Z."
    )
    end = InstantFormField(help_text="Included; not in the future.")
    overlap_policy = forms.ChoiceField(
        choices=[(p.value, OverlapPolicy(p).label) for p in BACKFILL_POLICIES],
        initial=OverlapPolicy.BUFFER_ALL,
        help_text="buffer all: one after another within max_instances slots of their own; allow all: all at once.",
    )
    dry_run = forms.BooleanField(required=False, help_text="Only count the runs.")


def _local(moment, timezone_name):
    try:
        zone = zone_get(timezone_name)
    except ValidationError:
        return moment.isoformat()
    return moment.astimezone(zone).strftime("%a %Y-%m-%d %H:%M:%S %Z")


class ExecutionJobFilter(admin.SimpleListFilter):
    """Executions of one job (`?job=<id>`, the link on a job's page): the job's own index. Unlike
    a related-field filter, it never lists every job as a choice."""

    title = "job"
    parameter_name = "job"

    def lookups(self, request, model_admin):
        # Only the job asked for (a choice is what makes the admin apply the filter at all).
        value = self.value()
        if not value:
            return []
        name = ScheduledJob.objects.filter(pk=value).values_list("name", flat=True).first() if value.isdigit() else None
        return [(value, name or f"no job {value}")]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(job_id=int(value)) if value.isdigit() else queryset.none()


@admin.register(JobExecution)
class JobExecutionAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "job",
        "status_shown",
        "trigger",
        "attempt",
        "scheduled_time",
        "planned_start",
        "started_at",
        "duration_ms",
        "instance_id",
    )
    # A date filter instead of date_hierarchy, which lists the distinct dates of the whole table.
    list_filter = ("status", "trigger", ("created_at", admin.DateFieldListFilter), ExecutionJobFilter)
    search_fields = ("id",)  # see get_search_results
    search_help_text = "An execution id, or the exact name of a job (not deleted)."
    list_select_related = ("job",)
    # Newest first is the (created_at, id) index; any other order would sort the whole history.
    sortable_by = ()
    readonly_fields = ("status_shown", "timeline", "result_pretty", "traceback_pre", "logs")
    exclude = ("result", "traceback")
    actions = ["cancel_runs"]

    @admin.display(description="Status", ordering="status")
    def status_shown(self, execution):
        return f"{execution.get_status_display()} (cancel requested)" if execution.cancel_pending else execution.status

    @admin.action(description=JOB_ACTIONS["cancel"].admin_description, permissions=["run_cancel"])
    def cancel_runs(self, request, queryset):
        done = 0
        for execution in queryset.select_related("job"):
            try:
                job_action_apply(execution.job, "cancel", user=request.user, execution_id=execution.pk)
                done += 1
            except ValidationError as exc:
                self.message_user(request, f"Execution {execution.pk}: {'; '.join(exc.messages)}", messages.ERROR)
        if done:
            verb = JOB_ACTIONS["cancel"].done
            self.message_user(request, f"{verb} {done} run{'s' if done != 1 else ''}.", messages.SUCCESS)

    def has_run_cancel_permission(self, request):
        return job_action_permitted(request.user, "cancel")

    def get_search_results(self, request, queryset, search_term):
        """Only searches an index answers: an execution id, or a job's exact name (its jobs' ids
        are looked up first, so the job's own index serves the rest). Free text over the whole
        history (error messages, host names) would read every row."""
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.isdigit():
            return queryset.filter(pk=int(term)), False
        job_ids = list(ScheduledJob.objects.active().filter(name=term).values_list("pk", flat=True))
        return queryset.filter(job_id__in=job_ids), False

    @admin.display(description="Timeline")
    def timeline(self, execution):
        return format_html_join(
            ", ",
            "{} at {}",
            ((step.status, f"{step.at:%Y-%m-%d %H:%M:%S.%f}"[:-3]) for step in execution_timeline(execution)),
        )

    @admin.display(description="Logs")
    def logs(self, execution):
        records, cut = execution_logs(execution)
        if not records:
            return "Nothing logged."
        lines = format_html_join(
            "\n", "{} {} {} {}", ((r["at"], r["level"], r["logger"], r["message"]) for r in records)
        )
        note = f" ({cut} records cut)" if cut else ""
        return format_html('<pre id="execution-logs">{}</pre>{}', lines, note)

    @admin.display(description="Result")
    def result_pretty(self, execution):
        return format_html("<pre>{}</pre>", json.dumps(execution.result, indent=2, default=str))

    @admin.display(description="Traceback")
    def traceback_pre(self, execution):
        return format_html("<pre>{}</pre>", execution.traceback or "-")


class CalendarForm(forms.ModelForm):
    dates = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12, "cols": 20}),
        required=False,
        help_text='One date per line, "YYYY-MM-DD" (e.g. 2026-12-25); read in the calendar\'s timezone.',
    )

    class Meta:
        model = Calendar
        fields = ["name", "timezone", "dates", "description"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["dates"] = "\n".join(self.instance.dates)

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            cleaned["dates"] = calendar_dates_parse(cleaned.get("dates") or "")
        except ValidationError as exc:
            self.add_error("dates", exc.message_dict["dates"])
        return cleaned

    def validate_unique(self):
        """The service checks the name, with a clearer message."""


@admin.register(Calendar)
class CalendarAdmin(admin.ModelAdmin):
    form = CalendarForm
    list_display = ("name", "timezone", "date_count", "next_date", "job_count")
    search_fields = ("name", "description")

    @admin.display(description="Dates")
    def date_count(self, calendar):
        return len(calendar.dates)

    @admin.display(description="Next date")
    def next_date(self, calendar):
        today = _today_in(calendar.timezone)
        return next((d for d in calendar.dates if d >= today), "-")

    @admin.display(description="Jobs using it")
    def job_count(self, calendar):
        return calendar.jobs.filter(is_active=True).count()

    def save_model(self, request, obj, form, change):
        values = {f: form.cleaned_data[f] for f in ("name", "timezone", "dates", "description")}
        saved = calendar_save(obj if change else None, **values)
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        calendar_delete(obj)

    def delete_queryset(self, request, queryset):
        for calendar in queryset:
            try:
                calendar_delete(calendar)
            except ValidationError as exc:
                self.message_user(request, f"{calendar.name}: {'; '.join(exc.messages)}", messages.ERROR)


def _today_in(timezone_name) -> str:
    try:
        return timezone.now().astimezone(zone_get(timezone_name)).date().isoformat()
    except ValidationError:
        return timezone.now().date().isoformat()


@admin.register(JobAuditEntry)
class JobAuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "job", "action", "actor", "source", "what_changed")
    list_filter = ("source", "action")
    search_fields = ("job__name", "actor")
    list_select_related = ("job",)
    date_hierarchy = "at"

    @admin.display(description="What changed")
    def what_changed(self, entry):
        return audit_changes_words(entry)


@admin.register(JobLease)
class JobLeaseAdmin(ReadOnlyAdmin):
    list_display = ("job", "execution", "locked_by", "locked_at", "expires_at")
    list_select_related = ("job", "execution")
    search_fields = ("job__name", "locked_by")


@admin.register(SchedulerInstance)
class SchedulerInstanceAdmin(ReadOnlyAdmin):
    list_display = (
        "instance_id",
        "hostname",
        "pid",
        "started_at",
        "last_heartbeat",
        "stopped_at",
        "clock_offset",
        "alive",
    )
    list_filter = ("hostname",)

    def get_queryset(self, request):
        # Alive by the database's clock, on which the heartbeats are written.
        alive = SchedulerInstance.objects.alive().filter(pk=OuterRef("pk"))
        return super().get_queryset(request).annotate(alive_now=Exists(alive))

    @admin.display(boolean=True, description="Alive", ordering="alive_now")
    def alive(self, instance):
        return instance.alive_now


# --- notifications ------------------------------------------------------------------------------


class NotificationChannelForm(forms.ModelForm):
    class Meta:
        model = NotificationChannel
        fields = ["name", "kind", "target", "is_active"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") and "target" in cleaned:
            try:
                cleaned["target"] = channel_validate(cleaned["kind"], cleaned["target"])
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    self.add_error(field, errors)
        return cleaned


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    form = NotificationChannelForm
    list_display = ("name", "kind", "target", "is_active", "subscription_count")
    list_filter = ("kind", "is_active")
    search_fields = ("name", "target")
    actions = ["send_test"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(subscription_total=Count("subscriptions"))

    @admin.display(description="Subscriptions", ordering="subscription_total")
    def subscription_count(self, channel):
        return channel.subscription_total

    def save_model(self, request, obj, form, change):
        channel_save(obj)

    @admin.action(description="Send a test notification", permissions=["change"])
    def send_test(self, request, queryset):
        for channel in queryset:
            notification_test_send(channel, user=request.user)
        self.message_user(
            request,
            f"Queued a test notification to {queryset.count()} channel(s); a scheduler process sends it within "
            f"SCHEDULER_NOTIFY_INTERVAL. See Notification deliveries for the outcome.",
            messages.SUCCESS,
        )


class NotificationSubscriptionForm(forms.ModelForm):
    class Meta:
        model = NotificationSubscription
        fields = [
            "channel",
            "job",
            "on_failed",
            "on_recovered",
            "on_missed",
            "on_skipped",
            "on_deadman",
            "deadman_grace",
            "is_active",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["job"].queryset = ScheduledJob.objects.active()

    def clean(self):
        cleaned = super().clean()
        events = ("on_failed", "on_recovered", "on_missed", "on_skipped", "on_deadman")
        if not any(cleaned.get(name) for name in events):
            raise ValidationError("Choose at least one event to notify about.")
        return cleaned


@admin.register(NotificationSubscription)
class NotificationSubscriptionAdmin(admin.ModelAdmin):
    form = NotificationSubscriptionForm
    list_display = (
        "channel",
        "job_or_all",
        "on_failed",
        "on_recovered",
        "on_missed",
        "on_skipped",
        "on_deadman",
        "deadman_grace",
        "is_active",
    )
    list_filter = ("channel", "is_active", "on_deadman")
    list_select_related = ("channel", "job")
    raw_id_fields = ("job",)
    search_fields = ("job__name", "channel__name")

    @admin.display(description="Job", ordering="job__name")
    def job_or_all(self, subscription):
        return subscription.job.name if subscription.job_id else "every job"

    def save_model(self, request, obj, form, change):
        subscription_save(obj)


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(ReadOnlyAdmin):
    """The outbox: each event for each channel, and whether it went (and if not, why)."""

    list_display = ("created_at", "event", "job", "channel", "status", "attempts", "sent_at", "last_error_short")
    list_filter = ("status", "event", "channel")
    list_select_related = ("channel", "job")
    search_fields = ("job__name", "event_key", "last_error")
    date_hierarchy = "created_at"
    actions = ["retry_now"]
    readonly_fields = ("payload_pretty",)
    exclude = ("payload",)

    @admin.display(description="Last error")
    def last_error_short(self, delivery):
        return (delivery.last_error[:120] + "...") if len(delivery.last_error) > 120 else (delivery.last_error or "-")

    @admin.display(description="Payload (webhook body)")
    def payload_pretty(self, delivery):
        return format_html("<pre>{}</pre>", json.dumps(delivery.payload, indent=2, default=str))

    @admin.action(description="Retry the selected failed deliveries now", permissions=["retry"])
    def retry_now(self, request, queryset):
        retried = deliveries_retry(queryset.values_list("pk", flat=True))
        self.message_user(request, f"{retried} failed deliveries will be sent again.", messages.SUCCESS)

    def has_retry_permission(self, request):
        return request.user.has_perm("scheduler.change_notificationchannel")


def _admin_job_action(name: str):
    """The admin action and its permission check for one row of the job actions table."""
    action = JOB_ACTIONS[name]

    def apply(modeladmin, request, queryset):
        modeladmin._apply(request, queryset, name)

    def has_permission(modeladmin, request):
        return job_action_permitted(request.user, name)

    apply.__name__ = f"{name}_jobs"
    setattr(
        ScheduledJobAdmin,
        apply.__name__,
        admin.action(description=action.admin_description, permissions=[f"job_{name}"])(apply),
    )
    setattr(ScheduledJobAdmin, f"has_job_{name}_permission", has_permission)


for _name, _action in JOB_ACTIONS.items():
    if not _action.on_run:
        _admin_job_action(_name)

"""The Django admin as the management interface; every write goes through the service layer."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef, Q
from django.http import JsonResponse
from django.urls import path
from django.utils.html import format_html, format_html_join

from scheduler.models import (
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
from scheduler.selectors import execution_logs, execution_timeline, job_audit_list
from scheduler.services import jobs as job_services
from scheduler.services.audit import audit_changes_words
from scheduler.services.cron import zone_get
from scheduler.services.job_actions import JOB_ACTIONS, job_action_apply, job_action_permitted
from scheduler.services.notifications import (
    channel_save,
    channel_validate,
    deliveries_retry,
    notification_test_send,
    subscription_save,
)
from scheduler.services.schedules import job_schedule_describe, job_upcoming_fire_times

FORM_FIELDS = [f for f in job_services.EDITABLE_FIELDS]
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


class ReadOnlyAdmin(ReadOnly, admin.ModelAdmin):
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

    def clean(self):
        cleaned = super().clean()
        values = {name: cleaned.get(name) for name in FORM_FIELDS if name in self.fields}
        # The form hides the fields of the other job type; whatever they still hold is not meant.
        job_type = cleaned.get("job_type")
        if job_type is not None and job_type.pk == JobType.CRON:
            values.update({field: None for field in ScheduledJob.INTERVAL_FIELDS})
        elif job_type is not None and job_type.pk == JobType.INTERVAL:
            values["cron_expression"] = None
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
        return super().get_queryset().order_by("-created_at", "-pk")[:RECENT_EXECUTIONS]


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
class ScheduledJobAdmin(admin.ModelAdmin):
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
        "is_paused",
    )
    list_filter = ("is_enabled", "is_paused", "job_type", "task_function")
    search_fields = ("name", "description", "task_function__name", "cron_expression")
    list_select_related = ("task_function", "job_type")
    ordering = ("name",)
    readonly_fields = (
        "upcoming_fire_times",
        "schedule",
        "pause_state",
        "next_run_time",
        "last_run_time",
        "audit",
        "audit_trail",
    )
    actions = [f"{name}_jobs" for name in JOB_ACTIONS]
    fieldsets = (
        (None, {"fields": ("name", "description", "task_function", "job_type", "is_enabled")}),
        (
            "Interval",
            {
                "classes": ("schedule-interval",),
                "fields": (("interval_days", "interval_hours", "interval_minutes", "interval_seconds"),),
            },
        ),
        ("Cron", {"classes": ("schedule-cron",), "fields": ("cron_expression",)}),
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
        ("Audit trail", {"fields": ("audit", "audit_trail")}),
    )

    class Media:
        js = ("scheduler/admin/job_form.js",)

    def get_queryset(self, request):
        return super().get_queryset(request).active().with_last_execution()

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

    @admin.display(description="Last status", ordering="last_execution_status")
    def last_status(self, job):
        return getattr(job, "last_execution_status", None) or "-"

    @admin.display(description="Paused")
    def pause_state(self, job):
        if not job.is_paused:
            return "no"
        return f"paused: {job.pause_reason}" if job.pause_reason else "paused"

    @admin.display(description="Next five fire times")
    def upcoming_fire_times(self, job):
        if not job.pk:
            return format_html('<span id="job-preview">{}</span>', "Shown once the schedule is filled in.")
        try:
            times = job_upcoming_fire_times(job, count=5)
        except (ValueError, ValidationError) as exc:
            return format_html('<span id="job-preview">{}</span>', str(exc))
        return format_html(
            '<ul id="job-preview">{}</ul>',
            format_html_join("", "<li>{}</li>", ((_local(t, job.timezone),) for t in times)),
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

    def delete_model(self, request, obj):
        job_services.job_delete(obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for job in queryset:
            job_services.job_delete(job, user=request.user)

    def get_deleted_objects(self, objs, request):
        """Delete is a soft delete: the job leaves the lists, its history stays."""
        to_delete = [format_html("Job: {}", job.name) for job in objs]
        return to_delete, {ScheduledJob._meta.verbose_name_plural: len(to_delete)}, set(), []

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

    # --- live preview for the edit form ---------------------------------------------------------

    def preview_view(self, request):
        """Next five fire times of the schedule being edited (JSON), computed like the engine does."""
        if not self.has_view_permission(request):
            return JsonResponse({"error": "permission denied"}, status=403)
        params = request.GET
        fields = {"job_type_id": params.get("job_type") or None, "timezone": params.get("timezone") or "UTC"}
        if params.get("job_type") == str(JobType.CRON):
            fields["cron_expression"] = params.get("cron_expression", "")
        else:
            for field in ScheduledJob.INTERVAL_FIELDS:
                value = params.get(field) or None
                fields[field] = int(value) if value and value.isdigit() else (None if value is None else value)
        try:
            description, times = job_services.job_schedule_preview(count=5, **fields)
        except ValidationError as exc:
            return JsonResponse({"errors": exc.message_dict}, status=400)
        return JsonResponse({"description": description, "fireTimes": [_local(t, fields["timezone"]) for t in times]})


def _local(moment, timezone_name):
    try:
        zone = zone_get(timezone_name)
    except ValidationError:
        return moment.isoformat()
    return moment.astimezone(zone).strftime("%a %Y-%m-%d %H:%M:%S %Z")


@admin.register(JobExecution)
class JobExecutionAdmin(ReadOnlyAdmin):
    list_display = ("id", "job", "status", "trigger", "scheduled_time", "started_at", "duration_ms", "instance_id")
    list_filter = ("status", "trigger")
    search_fields = ("job__name", "error_message", "celery_task_id", "instance_id")
    list_select_related = ("job",)
    date_hierarchy = "created_at"
    readonly_fields = ("timeline", "result_pretty", "traceback_pre", "logs")
    exclude = ("result", "traceback")

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


for _name in JOB_ACTIONS:
    _admin_job_action(_name)

"""Tables of the operator's tools: the jobs' audit trail, the logs of each run, notifications."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q

from scheduler.enums import ChangeSource, DeliveryStatus, NotificationEvent, NotificationKind
from scheduler.querysets import AuditQuerySet, DeliveryQuerySet, SubscriptionQuerySet


class JobAuditEntry(models.Model):
    """One change to a job: who, when, through what, and the fields before and after."""

    job = models.ForeignKey("scheduler.ScheduledJob", on_delete=models.CASCADE, related_name="audit_entries")
    action = models.CharField(max_length=40, help_text="create, edit, delete, pause, resume, enable, disable, ...")
    at = models.DateTimeField(db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as text too: a user deleted later, a command-line user or a scheduler process is still named.
    actor = models.CharField(max_length=200, blank=True, help_text="Who, as a person reads it.")
    source = models.CharField(max_length=20, choices=ChangeSource.choices)
    changes = models.JSONField(
        default=dict, blank=True, encoder=DjangoJSONEncoder, help_text='{"field": {"before": ..., "after": ...}}'
    )
    details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder, help_text="reason, execution id")

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name_plural = "job audit entries"
        indexes = [models.Index(fields=["job", "-at", "-id"], name="scheduler_audit_job_idx")]

    def __str__(self):
        return f"{self.action} of job {self.job_id} by {self.actor or '-'} ({self.source})"


class ExecutionLog(models.Model):
    """The log records a run's task function emitted, kept with its execution (bounded per run)."""

    execution = models.OneToOneField(
        "scheduler.JobExecution", on_delete=models.CASCADE, primary_key=True, related_name="log"
    )
    records = models.JSONField(default=list, encoder=DjangoJSONEncoder)
    cut = models.PositiveIntegerField(default=0, help_text="Records left out to keep the run's log bounded.")

    def __str__(self):
        return f"log of execution {self.execution_id} ({len(self.records)} records)"


class NotificationChannel(models.Model):
    """Where notifications go: email addresses (Django's email backend) or a webhook URL."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=NotificationKind.choices)
    target = models.TextField(help_text="Email: addresses separated by commas. Webhook: an http(s) URL.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.kind})"


class NotificationSubscription(models.Model):
    """Which events of one job (or of every job) notify a channel."""

    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="subscriptions")
    job = models.ForeignKey(
        "scheduler.ScheduledJob",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="subscriptions",
        help_text="Empty: every job.",
    )
    on_failed = models.BooleanField(default=True, help_text="A run failed.")
    on_recovered = models.BooleanField(default=True, help_text="The first successful run after failures.")
    on_missed = models.BooleanField(default=False, help_text="Runs were missed (later than the misfire grace time).")
    on_skipped = models.BooleanField(default=False, help_text="Runs were skipped (max instances reached).")
    on_deadman = models.BooleanField(
        default=False, help_text="No successful run within the job's expected period plus the grace."
    )
    deadman_grace = models.PositiveIntegerField(
        default=300, help_text="Seconds past the expected run before the dead-man alert goes out."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        ordering = ["channel__name", "pk"]

    def __str__(self):
        return f"{self.channel.name}: {self.job.name if self.job_id else 'every job'}"

    def wants(self, event: str) -> bool:
        return getattr(self, f"on_{event}")


class NotificationDelivery(models.Model):
    """One event for one channel: the outbox row a scheduler process claims, sends and records."""

    event_key = models.CharField(max_length=200, help_text="Identifies the event; one delivery per channel.")
    event = models.CharField(max_length=20, choices=NotificationEvent.choices)
    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="deliveries")
    job = models.ForeignKey(
        "scheduler.ScheduledJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # No foreign key: history retention deletes executions, and the delivery's record stays.
    execution_id = models.BigIntegerField(null=True, blank=True)
    subject = models.CharField(max_length=300)
    text = models.TextField()
    payload = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_by = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "notification deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event_key", "channel"], name="scheduler_delivery_once_per_channel")
        ]
        indexes = [
            # The senders' only read: deliveries waiting to be sent (or whose sender stopped).
            models.Index(
                fields=["next_attempt_at"],
                name="scheduler_delivery_due_idx",
                condition=Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING]),
            ),
            models.Index(fields=["-created_at"], name="scheduler_delivery_recent_idx"),
        ]

    def __str__(self):
        return f"{self.event} -> {self.channel_id}: {self.status}"


class JobAlertState(models.Model):
    """What the notifier remembers of a job in trouble: its failure streak and dead-man deadline.

    Only jobs that failed, missed, skipped or fell behind get a row, so the table stays small
    whatever the fleet; a recovered job's row is deleted.
    """

    job = models.OneToOneField(
        "scheduler.ScheduledJob", on_delete=models.CASCADE, primary_key=True, related_name="alert_state"
    )
    failing_since = models.DateTimeField(null=True, blank=True, help_text="The first failure of the streak.")
    last_failure_at = models.DateTimeField(null=True, blank=True)
    deadman_check_at = models.DateTimeField(null=True, blank=True, db_index=True)
    deadman_alerted_at = models.DateTimeField(null=True, blank=True)
    deadman_since = models.DateTimeField(null=True, blank=True, help_text="The success the deadline counts from.")

    def __str__(self):
        return f"alert state of job {self.job_id}"


class NotifierCursor(models.Model):
    """How far the notifiers have read the runs; its row lock lets one process at a time detect."""

    name = models.CharField(max_length=40, primary_key=True)
    scanned_to = models.DateTimeField(null=True, blank=True)
    resume_at = models.DateTimeField(null=True, blank=True, help_text="Mid-scan: the next page starts after this.")
    resume_id = models.BigIntegerField(null=True, blank=True)

    def __str__(self):
        return self.name

"""Cancelling runs: ones not yet claimed end at once; claimed and running ones are asked to stop."""

import logging

from django.core.exceptions import ValidationError
from django.db import transaction

from scheduler import clock
from scheduler.backends import backend
from scheduler.enums import CANCELLABLE_STATUSES, ExecutionStatus
from scheduler.models import JobExecution
from scheduler.services.changes import changes_announce
from scheduler.services.offload import offloaded_run_revoke

logger = logging.getLogger("scheduler.cancels")


def execution_cancel(execution: JobExecution, *, user=None) -> JobExecution:
    """The operator's cancel (API, admin, dashboard) of a pending, waiting or running run.

    A run no process has claimed yet (waiting, or a manual run not picked up) ends cancelled now and
    never starts. A claimed or running one is asked to stop: an offloaded run is revoked with
    termination on its Celery worker; an inline one sees `current_run().cancel_requested` and ends
    cancelled once its function returns. Until then it shows "cancel requested".
    """
    who = getattr(user, "username", "") if getattr(user, "is_authenticated", False) else ""
    return _cancel(
        execution,
        reason=f"cancelled by {who}" if who else "cancelled",
        user=user if who else None,
        terminate=True,
    )


def executions_stop_oldest(job_id: int, *, terminate: bool, policy: str) -> JobExecution | None:
    """cancel_other / terminate_other: ask the job's oldest run in progress to stop, so the run due
    now can start once it has. Called inside the claim transaction, under the job's row lock."""
    oldest = (
        JobExecution.objects.filter(
            job_id=job_id,
            status__in=(ExecutionStatus.PENDING, ExecutionStatus.RUNNING),
            cancel_requested_at__isnull=True,
        )
        .exclude(instance_id="", celery_task_id="")
        .order_by("created_at", "pk")
        .first()
    )
    if oldest is None:
        return None
    return _cancel(
        oldest, reason=f"cancelled by the overlap policy {policy}: a newer run is due", user=None, terminate=terminate
    )


def _cancel(execution: JobExecution, *, reason: str, user, terminate: bool) -> JobExecution:
    with transaction.atomic():
        current = JobExecution.objects.select_for_update().get(pk=execution.pk)
        if current.status not in CANCELLABLE_STATUSES:
            raise ValidationError(
                {
                    "execution_id": f"Execution {current.pk} is {current.get_status_display()}; only a pending, "
                    f"waiting or running run can be cancelled."
                }
            )
        now = clock.now()
        fields = {"cancel_requested_at": current.cancel_requested_at or now, "cancel_reason": reason[:300]}
        if user is not None:
            fields["cancel_requested_by"] = user
        unclaimed = current.status == ExecutionStatus.WAITING or (
            current.status == ExecutionStatus.PENDING and not current.instance_id and not current.celery_task_id
        )
        if unclaimed:
            fields.update(status=ExecutionStatus.CANCELLED, finished_at=now, error_message=reason)
        JobExecution.objects.filter(pk=current.pk).update(**fields)
        for key, value in fields.items():
            setattr(current, key, value)
        if not unclaimed:
            if current.celery_task_id:
                task_id = current.celery_task_id
                transaction.on_commit(lambda: offloaded_run_revoke(task_id, terminate=terminate))
            changes_announce(job_id=current.job_id, execution_id=current.pk)
    logger.info(
        "Execution %s of job %s: %s%s",
        current.pk,
        current.job_id,
        reason,
        "" if unclaimed else " (asked to stop)",
        extra={"execution_id": current.pk, "job_id": current.job_id},
    )
    return current


def cancels_requested(execution_ids) -> dict[int, str]:
    """Of these runs (in progress in one process), those asked to stop, with the reason."""
    asked = JobExecution.objects.filter(cancel_requested_at__isnull=False, status__in=CANCELLABLE_STATUSES)
    return dict(backend().with_ids(asked, execution_ids).values_list("pk", "cancel_reason"))

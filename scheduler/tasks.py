"""The Celery task: the worker side of offloaded runs. Thin: it calls the run services."""

import logging
import threading

from celery import shared_task, signals
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from django.conf import settings
from django.db import connection

from scheduler.services.leases import leases_renew
from scheduler.services.offload import RUN_OFFLOADED, offloaded_run_lost
from scheduler.services.runs import HOSTNAME, execution_run

logger = logging.getLogger("scheduler.offload")


@shared_task(
    bind=True,
    name=RUN_OFFLOADED,
    # Acknowledge after the run, so a message whose worker dies before starting it is delivered
    # again; a run that had started is never run twice (pending -> running happens once).
    acks_late=True,
    # A worker process killed mid-run is not retried blindly: the run is failed with the reason.
    reject_on_worker_lost=False,
    ignore_result=False,
)
def run_offloaded(self, execution_id: int):
    """Run one offloaded execution on this worker, renewing its lease while it runs."""
    stop = threading.Event()
    renewer = threading.Thread(target=_renew_lease, args=(execution_id, stop), daemon=True)
    renewer.start()
    try:
        execution = execution_run(
            execution_id,
            hostname=self.request.hostname or HOSTNAME,
            celery_task_id=self.request.id or "",
            timeout_errors=(SoftTimeLimitExceeded,),
        )
    finally:
        stop.set()
    return {"execution_id": execution_id, "status": execution.status if execution else "not run"}


def _renew_lease(execution_id: int, stop: threading.Event) -> None:
    interval = max(1.0, settings.SCHEDULER_LOCK_TTL / 3)
    while not stop.wait(interval):
        try:
            leases_renew([execution_id])
        except Exception as exc:  # a missed renewal is retried next interval; expiry is the backstop
            logger.warning(
                "Could not renew the lease of execution %s (%s); retrying",
                execution_id,
                exc,
                extra={"execution_id": execution_id},
            )
            connection.close()
    connection.close()


@signals.task_failure.connect
def _record_lost_run(sender=None, task_id=None, exception=None, args=None, **kwargs):
    """Hard time limit or a worker process that died: fail the execution now, with the reason."""
    if getattr(sender, "name", None) != RUN_OFFLOADED or not args:
        return
    if isinstance(exception, TimeLimitExceeded):
        reason = f"timed out: killed at the hard time limit ({exception})"
    else:
        reason = f"worker lost: {type(exception).__name__}: {exception}"
    offloaded_run_lost(args[0], reason=reason)

"""The Celery task: the worker side of offloaded runs. Thin: it calls the run services."""

import logging
import threading

from celery import shared_task, signals
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from django.conf import settings
from django.db import connection

from scheduler.registry import run_cancel
from scheduler.services.cancels import cancels_requested
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
    """Run one offloaded execution on this worker, renewing its lease and watching for a cancel
    request while it runs."""
    stop = threading.Event()
    renewer = threading.Thread(target=_watch_run, args=(execution_id, stop), daemon=True)
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


# Seconds between looks for a cancel request (an overlap policy's cancel_other, or a cancel that
# could not revoke): the function sees it through current_run().cancel_requested.
CANCEL_CHECK_INTERVAL = 1.0


def _watch_run(execution_id: int, stop: threading.Event) -> None:
    renew_every = max(1.0, settings.SCHEDULER_LOCK_TTL / 3)
    since_renewal = 0.0
    while not stop.wait(CANCEL_CHECK_INTERVAL):
        since_renewal += CANCEL_CHECK_INTERVAL
        try:
            if reason := cancels_requested([execution_id]).get(execution_id):
                run_cancel(execution_id, reason)
            if since_renewal >= renew_every:
                leases_renew([execution_id])
                since_renewal = 0.0
        except Exception as exc:  # a missed renewal is retried next interval; expiry is the backstop
            logger.warning(
                "Could not renew the lease of execution %s (%s); retrying",
                execution_id,
                exc,
                extra={"execution_id": execution_id},
            )
            connection.close()
    connection.close()


@signals.task_revoked.connect
def _record_revoked_run(sender=None, request=None, terminated=None, signum=None, expired=None, **kwargs):
    """A run revoked by a cancel (before it started, or terminated while running) ends cancelled;
    this runs in the worker's main process, since the process that ran it may be gone."""
    if getattr(sender, "name", None) != RUN_OFFLOADED or not getattr(request, "args", None):
        return
    how = "terminated on the worker" if terminated else "revoked before it started"
    offloaded_run_lost(request.args[0], reason=f"{how}{' (expired)' if expired else ''}")


@signals.task_failure.connect
def _record_lost_run(sender=None, task_id=None, exception=None, args=None, **kwargs):
    """Hard time limit or a worker process that died: fail the execution now, with the reason."""
    if getattr(sender, "name", None) != RUN_OFFLOADED or not args:
        return
    timed_out = isinstance(exception, TimeLimitExceeded)
    if timed_out:
        reason = f"timed out: killed at the hard time limit ({exception})"
    else:
        reason = f"worker lost: {type(exception).__name__}: {exception}"
    offloaded_run_lost(args[0], reason=reason, timed_out=timed_out)

"""Announcements to running scheduler processes that jobs or manual runs changed."""
import json

from django.db import connection, transaction
from django.dispatch import Signal

NOTIFY_CHANNEL = "scheduler_changes"

# Sent in-process after commit; the engine listens to it when it shares the process.
schedule_changed = Signal()


def changes_announce(*, job_id: int | None = None, execution_id: int | None = None) -> None:
    """After the current transaction commits, tell every scheduler process to look again."""
    payload = json.dumps({"job": job_id, "execution": execution_id})

    def send():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, payload])
        schedule_changed.send(sender=None, job_id=job_id, execution_id=execution_id)

    transaction.on_commit(send)

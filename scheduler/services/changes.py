"""Announcements to running scheduler processes that jobs or manual runs changed."""

import json

from django.db import transaction
from django.dispatch import Signal

from scheduler.backends import backend

# Sent in-process after each announcement, for code sharing the process that wants to know (the
# test suite records announcements with it). Scheduler processes hear of changes through the
# database backend: LISTEN/NOTIFY on PostgreSQL, their poll on SQLite.
schedule_changed = Signal()


def changes_announce(*, job_id: int | None = None, execution_id: int | None = None) -> None:
    """After the current transaction commits, tell every scheduler process to look again."""
    payload = json.dumps({"job": job_id, "execution": execution_id})

    def send():
        backend().changes_announce(payload)
        schedule_changed.send(sender=None, job_id=job_id, execution_id=execution_id)

    transaction.on_commit(send)

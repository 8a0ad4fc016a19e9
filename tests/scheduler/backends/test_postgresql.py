"""The PostgreSQL backend on its own: commit durability per transaction, and LISTEN/NOTIFY."""
import threading

import pytest
from django.db import connection, transaction
from django.db.backends.signals import connection_created

from scheduler.backends.postgresql import PostgreSQLBackend

pytestmark = pytest.mark.postgres


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.fixture
def asynchronous_outcomes(transactional_db):
    PostgreSQLBackend().outcomes_asynchronous()
    yield
    connection_created.disconnect(dispatch_uid="scheduler-async-commit")
    connection.close()


def test_outcomes_commit_asynchronously_but_claims_wait_for_durability(postgres, asynchronous_outcomes):
    assert synchronous_commit() == "off"
    with transaction.atomic():
        PostgreSQLBackend().claim_durable()
        assert synchronous_commit() == "on"
    assert synchronous_commit() == "off"  # SET LOCAL: only the claim's transaction


def test_an_announcement_wakes_a_listener_once_committed(postgres, transactional_db):
    woken = threading.Event()
    listening = threading.Event()
    stop = threading.Event()

    def wakeup():
        # The listener wakes once as it starts listening (changes it may have missed); after that,
        # only announcements do.
        (woken if listening.is_set() else listening).set()

    listener = PostgreSQLBackend().change_listener(wakeup, stop)
    listener.start()
    try:
        assert listening.wait(10), "the listener never connected"
        with transaction.atomic():
            PostgreSQLBackend().changes_announce('{"job": 1, "execution": null}')
            assert not woken.wait(0.3), "an announcement must not arrive before its transaction commits"
        assert woken.wait(10), "the committed announcement never woke the listener"
    finally:
        stop.set()
        listener.join(5)

"""The PostgreSQL backend on its own: the engine's session settings, commit durability per
transaction, LISTEN/NOTIFY, the database's clock, and cutting a stuck connection."""

import threading
from datetime import timedelta

import pytest
from django.db import DatabaseError, OperationalError, connection, connections, transaction
from django.db.backends.signals import connection_created
from django.utils import timezone

from scheduler.backends.postgresql import ENGINE_SESSIONS, PostgreSQLBackend

pytestmark = pytest.mark.postgres


def show(setting: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {setting}")
        return cursor.fetchone()[0]


@pytest.fixture
def engine_sessions(transactional_db, settings):
    settings.SCHEDULER_DB_IDLE_IN_TRANSACTION_TIMEOUT = 4
    settings.SCHEDULER_DB_STATEMENT_TIMEOUT = 7.5
    engine_thread = {"answer": True}
    PostgreSQLBackend().engine_sessions(is_engine_thread=lambda: engine_thread["answer"])
    yield engine_thread
    connection_created.disconnect(dispatch_uid=ENGINE_SESSIONS)
    connection.close()


def test_engine_sessions_commit_outcomes_asynchronously_and_bound_their_transactions(postgres, engine_sessions):
    assert show("synchronous_commit") == "off"
    assert show("idle_in_transaction_session_timeout") == "4s"
    assert (show("statement_timeout"), show("lock_timeout")) == ("7500ms", "7500ms")
    with transaction.atomic():
        PostgreSQLBackend().claim_durable()
        assert show("synchronous_commit") == "on"
    assert show("synchronous_commit") == "off"  # SET LOCAL: only the claim's transaction


def test_task_function_threads_keep_the_database_defaults(postgres, engine_sessions):
    engine_sessions["answer"] = False
    connection.close()
    assert show("synchronous_commit") == "on"
    assert show("statement_timeout") == "0"


def test_a_session_idle_in_a_transaction_is_ended_and_its_row_locks_released(postgres, engine_sessions, settings):
    settings.SCHEDULER_DB_IDLE_IN_TRANSACTION_TIMEOUT = 1
    connection_created.disconnect(dispatch_uid=ENGINE_SESSIONS)
    PostgreSQLBackend().engine_sessions(is_engine_thread=lambda: True)  # reconnects with 1 s
    with pytest.raises(DatabaseError, match="idle-in-transaction timeout"):
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT id FROM scheduler_scheduledjob FOR UPDATE")
            threading.Event().wait(3)  # cut off mid-claim: nothing more reaches the server
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
    connection.close()
    with connections["default"].cursor() as cursor:  # another session may lock the rows at once
        cursor.execute("SELECT id FROM scheduler_scheduledjob FOR UPDATE NOWAIT")


def test_the_database_clock_is_read_from_the_server(postgres):
    before = timezone.now()
    database_now = PostgreSQLBackend().database_now()
    assert before - timedelta(seconds=5) < database_now < timezone.now() + timedelta(seconds=5)


def test_severing_a_connection_fails_the_call_waiting_on_it_at_once(postgres, transactional_db):
    held = {}
    waiting = threading.Event()

    def wait_on_the_server():
        held["wrapper"] = connections["default"]  # this thread's own connection
        try:
            with connection.cursor() as cursor:
                held["pid"] = connection.connection.info.backend_pid
                waiting.set()
                cursor.execute("SELECT pg_sleep(60)")
        except OperationalError as exc:
            held["error"] = exc
        finally:
            connection.close()

    waiter = threading.Thread(target=wait_on_the_server)
    started = timezone.now()
    waiter.start()
    assert waiting.wait(10)
    threading.Event().wait(0.5)  # let pg_sleep reach the server
    PostgreSQLBackend().connection_sever(held["wrapper"])
    waiter.join(20)
    assert not waiter.is_alive() and isinstance(held.get("error"), OperationalError)
    assert timezone.now() - started < timedelta(seconds=20)
    with connection.cursor() as cursor:  # the server ends the abandoned query when it is told to
        cursor.execute("SELECT pg_terminate_backend(%s)", [held["pid"]])

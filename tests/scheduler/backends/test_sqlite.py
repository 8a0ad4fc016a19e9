"""The SQLite backend on its own: one scheduler process per database, and a short poll."""

import pytest
from django.db import connection

from scheduler.backends import SchedulerAlreadyRunning
from scheduler.backends.sqlite import MAX_POLL_INTERVAL, SQLiteBackend


def test_poll_interval_is_capped_because_nothing_announces_changes():
    assert SQLiteBackend().poll_interval(5.0) == MAX_POLL_INTERVAL
    assert SQLiteBackend().poll_interval(0.2) == 0.2
    assert SQLiteBackend().change_listener(lambda: None, None) is None


def test_a_second_scheduler_process_on_the_same_database_is_refused(db, tmp_path, monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "NAME", str(tmp_path / "db.sqlite3"))
    first = SQLiteBackend()
    first.single_process_guard()
    with pytest.raises(SchedulerAlreadyRunning, match="SQLite supports a single scheduler process"):
        SQLiteBackend().single_process_guard()
    first._guard_file.close()  # the process holding it ends
    SQLiteBackend().single_process_guard()

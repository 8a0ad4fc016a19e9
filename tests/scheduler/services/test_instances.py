"""Scheduler processes: registration, heartbeats, liveness and abandoning runs."""

from datetime import timedelta

import pytest
from django.db import IntegrityError
from django.utils import timezone

from scheduler import clock
from scheduler.backends import backend
from scheduler.models import (
    ExecutionStatus,
    JobExecution,
    JobLease,
    SchedulerInstance,
)
from scheduler.services.claims import runs_claim
from scheduler.services.executions import execution_start
from scheduler.services.instances import (
    clock_offset_measure,
    executions_abandon,
    instance_heartbeat,
    instance_register,
    instance_stop,
)
from tests.scheduler.services.conftest import T0, A, B, interval_job

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("only_test_jobs")]


# --- registration, heartbeats, liveness ---------------------------------------------------------


def test_register_records_the_process_as_alive():
    before = timezone.now()
    instance = instance_register(instance_id=A, hostname="host-1", pid=4242)
    instance.refresh_from_db()
    assert (instance.hostname, instance.pid, instance.stopped_at) == ("host-1", 4242, None)
    assert before <= instance.started_at == instance.last_heartbeat <= timezone.now()
    assert list(SchedulerInstance.objects.alive()) == [instance]
    assert instance.is_alive()


def test_the_same_instance_id_cannot_register_twice():
    instance_register(instance_id=A, hostname="host-1", pid=1)
    with pytest.raises(IntegrityError):
        instance_register(instance_id=A, hostname="host-2", pid=2)


def test_process_is_dead_after_three_missed_heartbeats(settings):
    settings.SCHEDULER_HEARTBEAT_INTERVAL = 10
    instance_register(instance_id=A, hostname="h", pid=1)
    instance_register(instance_id=B, hostname="h", pid=2)
    now = timezone.now()
    SchedulerInstance.objects.filter(instance_id=A).update(last_heartbeat=now - timedelta(seconds=29))
    SchedulerInstance.objects.filter(instance_id=B).update(last_heartbeat=now - timedelta(seconds=31))

    assert list(SchedulerInstance.objects.alive(now).values_list("instance_id", flat=True)) == [A]
    assert SchedulerInstance.objects.get(instance_id=A).is_alive(now)
    assert not SchedulerInstance.objects.get(instance_id=B).is_alive(now)


def test_heartbeat_brings_a_silent_process_back_to_life(settings):
    settings.SCHEDULER_HEARTBEAT_INTERVAL = 10
    instance_register(instance_id=A, hostname="h", pid=1)
    silent_since = timezone.now() - timedelta(minutes=5)
    SchedulerInstance.objects.filter(instance_id=A).update(last_heartbeat=silent_since)
    assert not SchedulerInstance.objects.alive().exists()

    instance_heartbeat(A)

    assert SchedulerInstance.objects.alive().get().instance_id == A


def test_heartbeat_of_one_process_does_not_touch_another():
    instance_register(instance_id=A, hostname="h", pid=1)
    instance_register(instance_id=B, hostname="h", pid=2)
    old = timezone.now() - timedelta(hours=1)
    SchedulerInstance.objects.update(last_heartbeat=old)
    instance_heartbeat(A)
    assert SchedulerInstance.objects.get(instance_id=B).last_heartbeat == old
    assert SchedulerInstance.objects.get(instance_id=A).last_heartbeat > old


def test_stopped_process_is_not_alive_even_with_a_fresh_heartbeat():
    instance_register(instance_id=A, hostname="h", pid=1)
    instance_stop(A)
    instance = SchedulerInstance.objects.get(instance_id=A)
    assert instance.stopped_at is not None
    assert not SchedulerInstance.objects.alive().exists()
    assert not instance.is_alive()


# --- abandoning runs at shutdown ----------------------------------------------------------------


def test_abandon_fails_the_running_runs_with_the_reason_and_frees_their_slots():
    interval_job()
    interval_job()
    runs = runs_claim(instance_id=A, now=T0)
    started, not_started = (JobExecution.objects.get(pk=run.execution_id) for run in runs)
    execution_start(started, instance_id=A)

    reason = "scheduler stopped before the run finished"
    assert executions_abandon([started.pk, not_started.pk], reason=reason) == 1

    started.refresh_from_db()
    assert (started.status, started.error_message) == (ExecutionStatus.FAILED, reason)
    assert started.finished_at is not None
    assert not JobLease.objects.filter(execution=started).exists()
    assert JobExecution.objects.get(pk=not_started.pk).status == ExecutionStatus.PENDING
    assert executions_abandon([started.pk], reason=reason) == 0, "a finished run is not failed again"


# --- the clock offset from the database ----------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("source, applied", [("database", True), ("host", False)])
def test_the_measured_offset_is_what_the_engine_schedules_by_unless_told_to_trust_the_host(
    settings, monkeypatch, source, applied
):
    settings.SCHEDULER_CLOCK_SOURCE = source
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=90))  # a host 90 s fast
    monkeypatch.setattr(clock, "_reading", None)
    offset = clock_offset_measure()
    assert -91 < offset < -89
    if applied:
        assert abs((clock.now() - real_now()).total_seconds()) < 1  # the database's time, not the host's
        assert -91 < clock.offset().total_seconds() < -89
    else:
        assert clock._reading is None and clock.now() - real_now() > timedelta(seconds=89)


def test_the_offset_is_measured_only_where_the_database_has_a_clock_of_its_own(monkeypatch):
    monkeypatch.setattr(clock, "_reading", None)
    offset = clock_offset_measure()
    if backend().database_now() is None:  # SQLite lives on this host
        assert offset is None and clock._reading is None
    else:
        assert abs(offset) < 5 and clock._reading is not None

"""Smoke test of the job services (full coverage lives beside it)."""

import pytest
from django.core.exceptions import ValidationError

from scheduler.models import ExecutionStatus
from scheduler.services.jobs import job_trigger
from tests.factories import CronJobFactory, IntervalJobFactory


def test_interval_job_gets_next_run_time(db):
    job = IntervalJobFactory(interval_minutes=5)
    assert job.next_run_time is not None


def test_cron_job_refuses_bad_expression(db):
    with pytest.raises(ValidationError) as exc:
        CronJobFactory(cron_expression="61 * * * *")
    assert "cron_expression" in exc.value.message_dict


def test_trigger_creates_pending_manual_execution(db, user):
    job = IntervalJobFactory()
    execution = job_trigger(job, user=user)
    assert execution.status == ExecutionStatus.PENDING
    assert execution.triggered_by == user

"""The reusable reads: job states (the one 'can this job fire' rule) in SQL and on a row agree."""

import itertools

import pytest

from scheduler.enums import JobState
from scheduler.models import ScheduledJob
from scheduler.querysets import JOB_STATE_FILTERS
from tests.factories import IntervalJobFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("active, enabled, paused", list(itertools.product([True, False], repeat=3)))
def test_each_job_is_in_exactly_the_state_its_row_says(active, enabled, paused):
    job = IntervalJobFactory()
    ScheduledJob.objects.filter(pk=job.pk).update(is_active=active, is_enabled=enabled, is_paused=paused)
    job.refresh_from_db()
    in_sql = [state for state in JobState if ScheduledJob.objects.filter(pk=job.pk).in_state(state).exists()]
    assert in_sql == [job.state]
    assert job.can_fire == (active and enabled and not paused)
    assert ScheduledJob.objects.schedulable().filter(pk=job.pk).exists() == job.can_fire


def test_every_state_has_a_filter():
    assert set(JOB_STATE_FILTERS) == set(JobState)


def test_the_due_index_has_the_condition_of_a_scheduled_job():
    [index] = [i for i in ScheduledJob._meta.indexes if i.name == "scheduler_job_due_idx"]
    assert index.condition == JOB_STATE_FILTERS[JobState.SCHEDULED]

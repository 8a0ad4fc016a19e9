"""FleetPaginator: the right rows on every page, counts that are exact where counting is cheap and
estimated (PostgreSQL) where it is not, and a depth limit for pages people click."""

from datetime import timedelta

import pytest
from django.core.paginator import EmptyPage
from django.db import connection
from django.utils import timezone

from scheduler.models import JobExecution, ScheduledJob
from scheduler.paginators import FleetPaginator
from scheduler.selectors import job_list
from tests.factories import ExecutionFactory, IntervalJobFactory

pytestmark = pytest.mark.django_db


def runs_of(job, count):
    now = timezone.now()
    JobExecution.objects.bulk_create(
        JobExecution(job=job, status="success", trigger="scheduled", scheduled_time=now - timedelta(seconds=n))
        for n in range(count)
    )


def test_every_page_holds_the_rows_plain_slicing_gives():
    for n in range(23):
        IntervalJobFactory(name=f"job {n:02}")
    ExecutionFactory(job=ScheduledJob.objects.get(name="job 07"), status="failed")
    rows = job_list()
    expected = list(rows.values_list("pk", flat=True))
    paginator = FleetPaginator(rows, 5)
    assert paginator.count == len(expected) and paginator.num_pages == 5
    seen = []
    for number in paginator.page_range:
        page = paginator.page(number)
        seen += [job.pk for job in page]
    assert seen == expected
    # Deep pages are read as ids first, then the rows: the annotations come with them.
    [job] = [j for j in paginator.page(2) if j.name == "job 07"]
    assert job.last_execution_status == "failed"


def test_a_known_count_is_used_as_it_is():
    IntervalJobFactory()
    paginator = FleetPaginator(ScheduledJob.objects.all(), 10, count=1234)
    assert paginator.count == 1234 and paginator.num_pages == 124


def test_max_depth_caps_the_pages_offered():
    job = IntervalJobFactory()
    runs_of(job, 60)
    paginator = FleetPaginator(JobExecution.objects.newest_first(), 10, max_depth=30)
    assert paginator.count == 60 and paginator.num_pages == 3
    assert len(paginator.page(3)) == 10
    with pytest.raises(EmptyPage):
        paginator.page(4)
    assert paginator.get_page(6).number == 3


def test_small_lists_are_counted_exactly_on_every_database():
    job = IntervalJobFactory()
    runs_of(job, 12)
    paginator = FleetPaginator(JobExecution.objects.filter(job=job), 5)
    assert paginator.count == 12 and not paginator.estimated


@pytest.mark.postgres
def test_large_lists_are_estimated_on_postgresql(postgres):
    job = IntervalJobFactory()
    runs_of(job, 12_000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE scheduler_jobexecution")
    whole = FleetPaginator(JobExecution.objects.all(), 100)
    assert 10_000 <= whole.count <= 14_000 and whole.estimated
    filtered = FleetPaginator(JobExecution.objects.filter(job=job, status="success"), 100)
    assert 10_000 <= filtered.count <= 14_000 and filtered.estimated
    # A filter that leaves few rows is counted.
    few = FleetPaginator(JobExecution.objects.filter(status="failed"), 100)
    assert few.count == 0 and not few.estimated
    assert len(whole.page(3)) == 100


def test_a_known_count_that_is_behind_never_hides_rows():
    for n in range(3):
        IntervalJobFactory(name=f"job {n}")
    for stale in (0, -2, 1):
        paginator = FleetPaginator(job_list(), 10, count=stale)
        assert paginator.count == max(0, stale)
        assert len(paginator.page(1)) == ScheduledJob.objects.count()

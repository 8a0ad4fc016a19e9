"""factory_boy factories; jobs are created through the service layer so every rule applies."""

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from scheduler.models import ExecutionStatus, ExecutionTrigger, JobExecution, JobType, TaskFunction
from scheduler.services.jobs import job_create

NOOP = "tasks.functions.noop"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pass")


class IntervalJobFactory(factory.Factory):
    """Builds the keyword arguments of job_create and calls it."""

    class Meta:
        model = dict

    name = factory.Sequence(lambda n: f"interval job {n}")
    task_function = factory.LazyFunction(lambda: TaskFunction.objects.get(name=NOOP))
    job_type_id = JobType.INTERVAL
    interval_minutes = 5

    @classmethod
    def _create(cls, model_class, *args, user=None, **kwargs):
        return job_create(user=user, **kwargs)

    @classmethod
    def _build(cls, model_class, *args, **kwargs):
        return kwargs


class CronJobFactory(IntervalJobFactory):
    name = factory.Sequence(lambda n: f"cron job {n}")
    job_type_id = JobType.CRON
    interval_minutes = None
    cron_expression = "0 2 * * *"
    timezone = "UTC"


class ExecutionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JobExecution

    job = factory.SubFactory(IntervalJobFactory)
    status = ExecutionStatus.PENDING
    trigger = ExecutionTrigger.SCHEDULED
    scheduled_time = factory.LazyFunction(timezone.now)


DECLARED_TASK = "tests.declared.job"


def declared_task(**kwargs):
    """The task function of the jobs tests declare in code (declared_jobs)."""
    return kwargs


def declared_jobs(*schedules) -> dict:
    """Declare jobs in code (registry.cron/interval) beside declared_task and sync them; returns the
    jobs by name. Use with the clean_registry fixture, which undoes the declaration."""
    from scheduler.models import ScheduledJob
    from scheduler.registry import task_function
    from scheduler.services.declarations import jobs_sync

    task_function(DECLARED_TASK, schedules=schedules)(declared_task)
    report = jobs_sync()
    assert not report.invalid, report.lines()
    return {job.name: job for job in ScheduledJob.objects.active().filter(name__in=[d.name for d in schedules])}

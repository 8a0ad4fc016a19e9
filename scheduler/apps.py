"""App config: loads the task-function registry and keeps the TaskFunction table in step with it."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class SchedulerConfig(AppConfig):
    name = "scheduler"
    verbose_name = "Scheduler"

    def ready(self):
        # Imported here, as Django's documentation does for signal handlers: these modules use
        # the models, which are not ready when this module is imported.
        from scheduler import checks, registry, tasks  # noqa: F401 (checks: registers them; tasks: the Celery task and its signal handler)
        from scheduler.services.task_functions import task_functions_sync

        registry.load()
        post_migrate.connect(
            lambda sender, using, **kwargs: task_functions_sync(using=using),
            sender=self,
            weak=False,
            dispatch_uid="scheduler-sync-tasks",
        )
        post_migrate.connect(_summaries_install, sender=self, weak=False, dispatch_uid="scheduler-summaries")


def _summaries_install(sender, using, plan=None, **kwargs):
    """The triggers that keep the run and job summaries, again after every migrate: on SQLite a
    migration that rebuilds the executions or jobs table drops them with it."""
    from django.db import connections

    from scheduler.backends import BACKENDS
    from scheduler.models import ExecutionSummary, JobTally

    connection = connections[using]
    tables = set(connection.introspection.table_names())
    # Not when migrated back to before the summaries existed.
    if {ExecutionSummary._meta.db_table, JobTally._meta.db_table} <= tables:
        BACKENDS[connection.vendor]().summaries_install(using=using)

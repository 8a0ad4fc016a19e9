"""App config: the task-function registry; after each migrate, the TaskFunction table, the jobs
declared in code and the summaries' triggers."""

from django.apps import AppConfig
from django.core.exceptions import FieldDoesNotExist
from django.db import DEFAULT_DB_ALIAS, router
from django.db.models.signals import post_migrate


class SchedulerConfig(AppConfig):
    name = "scheduler"
    verbose_name = "Scheduler"

    def ready(self):
        # Imported here, as Django's documentation does for signal handlers: these modules use
        # the models, which are not ready when this module is imported.
        from scheduler import checks, registry, tasks  # noqa: F401 (checks: registers them; tasks: the Celery task and its signal handler)
        from scheduler.models import ScheduledJob, TaskFunction
        from scheduler.services.declarations import jobs_sync
        from scheduler.services.task_functions import task_functions_sync

        registry.load()

        def sync_task_functions(sender, using, **kwargs):
            # Not on a database the scheduler's tables are kept out of (a router's choice).
            if router.allow_migrate_model(using, TaskFunction):
                task_functions_sync(using=using)

        def sync_declared_jobs(sender, using, verbosity=1, stdout=None, apps=None, **kwargs):
            # The job services write to the default database only.
            if using != DEFAULT_DB_ALIAS or not router.allow_migrate_model(using, ScheduledJob):
                return
            if apps is not None and not _has_declared_jobs_columns(apps):
                return  # migrated back to before declared jobs existed: this code's models do not fit
            report = jobs_sync()
            if stdout is not None and verbosity >= 1 and (report.changed or report.invalid):
                for line in report.lines():
                    stdout.write(f"  {line}\n")

        post_migrate.connect(sync_task_functions, sender=self, weak=False, dispatch_uid="scheduler-sync-tasks")
        post_migrate.connect(_summaries_install, sender=self, weak=False, dispatch_uid="scheduler-summaries")
        post_migrate.connect(sync_declared_jobs, sender=self, weak=False, dispatch_uid="scheduler-sync-jobs")


def _has_declared_jobs_columns(apps) -> bool:
    """Whether the migrated schema (post_migrate's `apps`) has the columns the sync writes."""
    try:
        apps.get_model("scheduler", "ScheduledJob")._meta.get_field("declaration_removed_at")
    except (LookupError, FieldDoesNotExist):
        return False
    return True


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

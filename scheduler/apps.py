"""App config: keeps the TaskFunction table in step with the code registry after migrate."""
from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_task_functions(sender, using, **kwargs):
    from scheduler.services.task_functions import task_functions_sync

    task_functions_sync(using=using)


class SchedulerConfig(AppConfig):
    name = "scheduler"
    verbose_name = "Scheduler"

    def ready(self):
        post_migrate.connect(_sync_task_functions, sender=self, dispatch_uid="scheduler-sync-tasks")

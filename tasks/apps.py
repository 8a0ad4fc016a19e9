"""App config for the task-function registry."""
from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Task functions"

    def ready(self):
        from tasks import registry

        registry.load()

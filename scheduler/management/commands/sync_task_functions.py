"""`manage.py sync_task_functions`: mirror the code registry into the TaskFunction table."""

from django.core.management.base import BaseCommand

from scheduler.services.task_functions import task_functions_sync


class Command(BaseCommand):
    help = (
        "Add and update TaskFunction rows from the functions registered with @task_function; "
        "functions no longer in code are marked inactive (never deleted)."
    )

    def handle(self, *args, **options):
        summary = task_functions_sync()
        for key in ("created", "updated", "deactivated"):
            for name in summary[key]:
                self.stdout.write(f"{key}: {name}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Task functions in sync: {len(summary['created'])} created, "
                f"{len(summary['updated'])} updated, {len(summary['deactivated'])} deactivated."
            )
        )

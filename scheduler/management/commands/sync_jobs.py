"""`manage.py sync_jobs`: bring the jobs declared in code (@task_function(schedules=...)) into the database."""

from django.core.management.base import BaseCommand, CommandError

from scheduler.services.declarations import jobs_sync

EXIT_INVALID = 2


class Command(BaseCommand):
    help = (
        "Create the jobs declared in code with @task_function(schedules=[cron(...), interval(...)]), "
        "update the declared fields of changed ones, and disable those whose declaration was removed "
        "(delete them with --prune). Pause state, next run and history are never reset. Also runs "
        "after migrate and when a scheduler process starts. Exits 2 when a declaration is invalid "
        "(its job is left as it is; the others are synced)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Report what would change; write nothing.")
        parser.add_argument(
            "--prune",
            action="store_true",
            help="Delete (soft delete: the history stays) the jobs whose declaration was removed, "
            "instead of disabling them.",
        )

    def handle(self, *args, dry_run: bool, prune: bool, **options):
        report = jobs_sync(dry_run=dry_run, prune=prune)
        *changes, summary = report.lines()
        for line in changes:
            self.stdout.write(line)
        if report.invalid:
            self.stdout.write(summary)
            raise CommandError(
                f"{len(report.invalid)} declared job{'s are' if len(report.invalid) != 1 else ' is'} invalid: "
                f"fix the declaration{'s' if len(report.invalid) != 1 else ''} listed above.",
                returncode=EXIT_INVALID,
            )
        self.stdout.write(self.style.SUCCESS(summary))

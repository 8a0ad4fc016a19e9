"""`manage.py import_celery_beat`: one job per django-celery-beat PeriodicTask."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS

from scheduler.enums import ChangeSource
from scheduler.services.audit import change_source, command_line_actor
from scheduler.services.celery_beat import CeleryBeatUnavailable, celery_beat_import

EXIT_BAD_ARGUMENTS = 2


class Command(BaseCommand):
    help = (
        "Read django-celery-beat's tables (in this database, or in --database ALIAS) and create one job "
        "per PeriodicTask: crontab and interval schedules with their timezone, args, kwargs, enabled, "
        "priority, description. A task whose Celery task name is not a registered task function, a "
        "solar or clocked schedule, or a name a job already has is reported and skipped; what the job "
        "cannot hold (one_off, start_time, expires, queue...) is listed for each task. "
        "django-celery-beat need not be installed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Report what would be created; write nothing.")
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            metavar="ALIAS",
            help="The DATABASES alias holding django-celery-beat's tables (default: the default database). "
            "The jobs are always created in the default database.",
        )

    def handle(self, *args, dry_run: bool, database: str, **options):
        try:
            with change_source(ChangeSource.COMMAND_LINE, actor=command_line_actor()):
                report = celery_beat_import(database=database, dry_run=dry_run)
        except CeleryBeatUnavailable as exc:
            raise CommandError(str(exc), returncode=EXIT_BAD_ARGUMENTS) from None
        *lines, summary = report.lines()
        for line in lines:
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS(summary))

"""`manage.py cleanup_executions`: apply the execution-history retention policy now."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from scheduler.services.retention import CLEANUP_BATCH_SIZE, executions_cleanup

EXIT_BAD_ARGUMENTS = 2


class Command(BaseCommand):
    help = (
        "Delete finished executions older than --older-than days (default "
        "SCHEDULER_HISTORY_RETENTION_DAYS) and those beyond a job's history limit, in batches. "
        "Pending and running executions are never deleted. The built-in history cleanup job "
        "does the same every night."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=None,
            metavar="DAYS",
            help=f"Age in days (0 or more; default {settings.SCHEDULER_HISTORY_RETENTION_DAYS}).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be deleted.")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=CLEANUP_BATCH_SIZE,
            help=f"Rows deleted per transaction (default {CLEANUP_BATCH_SIZE}).",
        )

    def handle(self, *args, older_than: int | None, dry_run: bool, batch_size: int, **options):
        days = settings.SCHEDULER_HISTORY_RETENTION_DAYS if older_than is None else older_than
        if days < 0:
            raise CommandError(f"--older-than must be 0 or more days; got {days}.", returncode=EXIT_BAD_ARGUMENTS)
        if batch_size < 1:
            raise CommandError(f"--batch-size must be at least 1; got {batch_size}.", returncode=EXIT_BAD_ARGUMENTS)
        count = executions_cleanup(older_than_days=days, batch_size=batch_size, dry_run=dry_run)
        rule = f"finished executions older than {days} day{'s' if days != 1 else ''} or beyond a job's history limit"
        if dry_run:
            self.stdout.write(f"Dry run: would delete {count} {rule}. Nothing was deleted.")
        else:
            self.stdout.write(self.style.SUCCESS(f"Deleted {count} {rule}."))

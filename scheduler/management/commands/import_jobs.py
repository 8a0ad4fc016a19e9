"""`manage.py import_jobs FILE`: create or change jobs from an export_jobs file, all or nothing."""

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from scheduler.enums import ChangeSource
from scheduler.services.audit import change_source, command_line_actor
from scheduler.services.job_transfer import ImportRefused, jobs_import

EXIT_INVALID = 2


class Command(BaseCommand):
    help = (
        "Read a file written by export_jobs and create or change its jobs, matched by name (jobs not in "
        "the file are left alone; keys a row leaves out keep the job's value). Every row is checked "
        "before any is written, and then all are written in one transaction: an invalid row means "
        "nothing is imported (exit 2). Prints what happens to each row."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE", help="The JSON file to read ('-' for standard input).")
        parser.add_argument("--dry-run", action="store_true", help="Report what would change; write nothing.")

    def handle(self, *args, file: str, dry_run: bool, **options):
        document = self._read(file)
        try:
            with change_source(ChangeSource.COMMAND_LINE, actor=command_line_actor()):
                report = jobs_import(document, dry_run=dry_run)
        except ImportRefused as exc:
            if exc.report is not None:
                for line in exc.report.lines()[:-1]:
                    self.stdout.write(line)
            raise CommandError(str(exc), returncode=EXIT_INVALID) from None
        *rows, summary = report.lines()
        for line in rows:
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS(summary))

    def _read(self, file: str):
        try:
            if file == "-":
                text = sys.stdin.read()
            else:
                with open(file, encoding="utf-8") as handle:
                    text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise CommandError(f"Cannot read {file}: {reason}.", returncode=EXIT_INVALID) from None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise CommandError(f"{file} is not JSON: {exc}.", returncode=EXIT_INVALID) from None

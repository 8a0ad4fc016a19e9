"""`manage.py export_jobs`: write every job (not deleted) as JSON that import_jobs reads back."""

import json

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from scheduler.services.job_transfer import jobs_export

EXIT_BAD_ARGUMENTS = 2


class Command(BaseCommand):
    help = (
        "Write every job that is not deleted (name, schedule, arguments, limits, enabled and paused "
        "state) as JSON, to standard output or --output FILE. `manage.py import_jobs FILE` reads it back."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", metavar="FILE", help="Write to FILE instead of standard output.")

    def handle(self, *args, output: str | None, **options):
        document = jobs_export()
        text = json.dumps(document, indent=2, ensure_ascii=False, cls=DjangoJSONEncoder) + "\n"
        if output is None:
            self.stdout.write(text, ending="")
            return
        try:
            with open(output, "w", encoding="utf-8") as file:
                file.write(text)
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc.strerror}.", returncode=EXIT_BAD_ARGUMENTS) from None
        self.stderr.write(f"Exported {len(document['jobs'])} jobs to {output}.")

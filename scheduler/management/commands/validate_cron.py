"""`manage.py validate_cron`: check a cron expression and show when it would fire."""
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from scheduler.services.cron import cron_describe, cron_next_fire_times, cron_validate, zone_get

EXIT_INVALID = 2
MAX_COUNT = 100


class Command(BaseCommand):
    help = (
        "Check a standard 5-field cron expression (or @daily-style macro). Exit 0 and print its "
        "description and next fire times when valid; exit 2 with the reason when not. The times "
        "come from the same code the scheduler uses, so they are the times it will fire."
    )

    def add_arguments(self, parser):
        parser.add_argument("expression", help='The cron expression, quoted: "0 2 * * *".')
        parser.add_argument(
            "--timezone",
            default=None,
            help=f"IANA timezone to evaluate it in (default: TIME_ZONE, now {settings.TIME_ZONE}).",
        )
        parser.add_argument(
            "--count", type=int, default=5, help=f"How many fire times to show (1-{MAX_COUNT}; default 5)."
        )

    def handle(self, *args, **options):
        expression, count = options["expression"], options["count"]
        zone_name = options["timezone"] or settings.TIME_ZONE
        if not 1 <= count <= MAX_COUNT:
            raise CommandError(
                f"--count must be between 1 and {MAX_COUNT}; got {count}.", returncode=EXIT_INVALID
            )
        try:
            zone = zone_get(zone_name)
        except ValidationError as exc:
            raise CommandError(exc.messages[0], returncode=EXIT_INVALID) from None
        try:
            normalised = cron_validate(expression, zone_name)
        except ValidationError as exc:
            raise CommandError(exc.messages[0], returncode=EXIT_INVALID) from None

        times = cron_next_fire_times(normalised, zone_name, timezone.now(), count)
        self.stdout.write(self.style.SUCCESS(f"Valid: {normalised}"))
        self.stdout.write(f"Description: {cron_describe(normalised)}")
        self.stdout.write(f"Timezone: {zone_name}")
        self.stdout.write(f"Next {count} fire time{'s' if count != 1 else ''}:")
        for fire_time in times:
            local = fire_time.astimezone(zone)
            utc = "" if zone_name == "UTC" else f"  ({fire_time:%Y-%m-%d %H:%M} UTC)"
            self.stdout.write(f"  {local:%Y-%m-%d %H:%M %Z (%z)}{utc}")

"""`manage.py validate_cron`: check a cron expression and show when it would fire."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from scheduler.services.cron import cron_describe, cron_next_fire_times, cron_validate, instant_parse, zone_get

EXIT_INVALID = 2
MAX_COUNT = 100


class Command(BaseCommand):
    help = (
        "Check a standard 5-field cron expression (or @daily-style macro). Exit 0 and print its "
        "description and next fire times (after now, or after --after) when valid; exit 2 with the "
        "reason when not. The times come from the same code the scheduler uses, so they are the "
        "times it will fire, daylight saving changes included."
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
        parser.add_argument(
            "--after",
            default=None,
            metavar="ISO",
            help="Show the fire times after this moment instead of now: ISO 8601 with an offset or Z, "
            "e.g. 2026-11-01T00:50:00-04:00 (to check a DST night or a month end before it happens).",
        )

    def handle(self, *args, **options):
        expression, count = options["expression"], options["count"]
        zone_name = options["timezone"] or settings.TIME_ZONE
        if not 1 <= count <= MAX_COUNT:
            raise CommandError(f"--count must be between 1 and {MAX_COUNT}; got {count}.", returncode=EXIT_INVALID)
        try:
            zone = zone_get(zone_name)
        except ValidationError as exc:
            raise CommandError(exc.messages[0], returncode=EXIT_INVALID) from None
        try:
            after = instant_parse(options["after"]) if options["after"] is not None else timezone.now()
        except ValidationError as exc:
            raise CommandError(f"--after: {exc.messages[0]}", returncode=EXIT_INVALID) from None
        try:
            normalised = cron_validate(expression, zone_name)
        except ValidationError as exc:
            raise CommandError(exc.messages[0], returncode=EXIT_INVALID) from None

        try:
            times = cron_next_fire_times(normalised, zone_name, after, count)
        except (ValueError, OverflowError):
            raise CommandError(f"No {count} fire times after {after.isoformat()}.", returncode=EXIT_INVALID) from None
        self.stdout.write(self.style.SUCCESS(f"Valid: {normalised}"))
        self.stdout.write(f"Description: {cron_describe(normalised)}")
        self.stdout.write(f"Timezone: {zone_name}")
        since = f" after {after.astimezone(zone):%Y-%m-%d %H:%M:%S %Z (%z)}" if options["after"] else ""
        self.stdout.write(f"Next {count} fire time{'s' if count != 1 else ''}{since}:")
        for fire_time in times:
            local = fire_time.astimezone(zone)
            utc = "" if zone_name == "UTC" else f"  ({fire_time:%Y-%m-%d %H:%M} UTC)"
            self.stdout.write(f"  {local:%Y-%m-%d %H:%M %Z (%z)}{utc}")

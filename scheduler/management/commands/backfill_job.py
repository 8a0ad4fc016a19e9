"""`manage.py backfill_job`: run the fire times a job would have had in a past range."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from scheduler.enums import OverlapPolicy
from scheduler.models import ScheduledJob
from scheduler.services.backfills import BACKFILL_POLICIES, job_backfill
from scheduler.services.cron import instant_parse

EXIT_INVALID = 2


class Command(BaseCommand):
    help = (
        "Queue a run of each fire time of a job in (--start, --end] that has not run (trigger backfill). "
        "They run in fire-time order within max_instances slots of their own while the live schedule goes "
        "on; a fire time that already ran is never run again. Exit 0 with the counts; 2 for bad input "
        "(unknown job, a range reaching into the future, reversed, or with more than 10,000 fire times)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--job-id", type=int, required=True, help="The job's id.")
        parser.add_argument("--start", required=True, metavar="ISO", help="Excluded: ISO 8601 with an offset or Z.")
        parser.add_argument("--end", required=True, metavar="ISO", help="Included; not in the future.")
        parser.add_argument(
            "--overlap-policy",
            default=OverlapPolicy.BUFFER_ALL,
            choices=[str(p) for p in BACKFILL_POLICIES],
            help="buffer_all (default): one after another; allow_all: all at once.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Count the runs without queueing them.")

    def handle(self, *args, **options):
        moments = {}
        for name in ("start", "end"):
            try:
                moments[name] = instant_parse(options[name])
            except ValidationError as exc:
                raise CommandError(f"--{name}: {exc.messages[0]}", returncode=EXIT_INVALID) from None
        job = ScheduledJob.objects.active().filter(pk=options["job_id"]).first()
        if job is None:
            raise CommandError(
                f"No job with id {options['job_id']} (it may have been deleted).", returncode=EXIT_INVALID
            )
        try:
            outcome = job_backfill(
                job,
                moments["start"],
                moments["end"],
                overlap_policy=options["overlap_policy"],
                dry_run=options["dry_run"],
            )
        except ValidationError as exc:
            problems = "; ".join(f"--{field.replace('_', '-')}: {' '.join(m)}" for field, m in exc.message_dict.items())
            raise CommandError(problems, returncode=EXIT_INVALID) from None
        verb = "Would queue" if options["dry_run"] else "Queued"
        self.stdout.write(
            f"{verb} {outcome.queued} backfilled run{'s' if outcome.queued != 1 else ''} of job {job.pk} ({job.name}); "
            f"{outcome.already_ran} fire time{'s' if outcome.already_ran != 1 else ''} in the range had already run."
        )
        for fire_time in outcome.fire_times[:20]:
            self.stdout.write(f"  {fire_time.isoformat()}")
        if len(outcome.fire_times) > 20:
            self.stdout.write(f"  ... and {len(outcome.fire_times) - 20} more")

"""`manage.py job_action`: pause, resume, enable, disable or trigger jobs from the command line."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from scheduler.enums import ChangeSource
from scheduler.models import ScheduledJob
from scheduler.services.audit import change_source, command_line_actor
from scheduler.services.job_actions import JOB_ACTIONS, job_action_apply

EXIT_NOT_FOUND = 1
EXIT_BAD_ARGUMENTS = 2


class Command(BaseCommand):
    help = (
        "Take a job action (the job actions table: trigger, pause, resume, enable, disable, ...) on "
        "one or more jobs, through the same services as the admin and the API. The audit trail records "
        "it as made on the command line by this OS user. Exit 1 if a job does not exist or was deleted, "
        "2 for bad arguments or an action the job refused."
    )

    def add_arguments(self, parser):
        # Actions on the job itself: cancel names a run, which the API, admin and dashboard take.
        parser.add_argument(
            "action", choices=[n for n, a in JOB_ACTIONS.items() if not a.on_run], help="The action to take."
        )
        parser.add_argument(
            "--job-id", type=int, action="append", required=True, dest="job_ids", help="A job's id (repeatable)."
        )
        parser.add_argument("--reason", default="", help="Why (pause only): shown as the pause reason.")

    def handle(self, *args, **options):
        name, reason = options["action"], options["reason"]
        if len(reason) > 1000:
            raise CommandError("--reason may be at most 1000 characters.", returncode=EXIT_BAD_ARGUMENTS)
        jobs = {job.pk: job for job in ScheduledJob.objects.active().filter(pk__in=options["job_ids"])}
        missing = [str(pk) for pk in options["job_ids"] if pk not in jobs]
        if missing:
            raise CommandError(f"No active job has id {', '.join(missing)}.", returncode=EXIT_NOT_FOUND)
        actor = command_line_actor()
        refused = []
        with change_source(ChangeSource.COMMAND_LINE, actor=actor):
            for job in jobs.values():
                try:
                    outcome = job_action_apply(job, name, reason=reason)
                except ValidationError as exc:
                    refused.append(f"job {job.pk} ({job.name}): {' '.join(exc.messages)}")
                    continue
                done = JOB_ACTIONS[name].done
                if name == "trigger":
                    self.stdout.write(f"{done} job {job.pk} ({job.name}): execution {outcome.pk} is pending.")
                else:
                    self.stdout.write(f"{done} job {job.pk} ({job.name}).")
        if refused:
            raise CommandError("Refused: " + "; ".join(refused), returncode=EXIT_BAD_ARGUMENTS)

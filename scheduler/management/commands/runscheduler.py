"""`manage.py runscheduler`: run jobs on time; any number of these may run at once on PostgreSQL."""

import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from scheduler.engine.process import EngineConfig, SchedulerAlreadyRunning, SchedulerProcess
from scheduler.services.claims import DEFAULT_BATCH_SIZE


def _positive_float(value):
    number = float(value)
    if number <= 0:
        raise ValueError
    return number


def _positive_int(value):
    number = int(value)
    if number <= 0:
        raise ValueError
    return number


_positive_float.__name__ = "positive number"
_positive_int.__name__ = "positive integer"


class Command(BaseCommand):
    help = (
        "Run the job scheduler: fire every enabled job on time and run manual triggers. Several "
        "processes may run at once on PostgreSQL (each run happens exactly once); SQLite allows "
        "one. Stops cleanly on SIGINT/SIGTERM."
    )
    # Like a Celery worker, the scheduler leaves Django's system checks to `manage.py check
    # --deploy` and the web process: they import the URLconf and the whole API, which a process
    # that should reach its first run at once has no use for.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--workers",
            type=_positive_int,
            default=settings.SCHEDULER_INLINE_WORKERS,
            help="Threads that run inline task functions (default: SCHEDULER_INLINE_WORKERS, %(default)s).",
        )
        parser.add_argument(
            "--poll-interval",
            type=_positive_float,
            default=settings.SCHEDULER_POLL_INTERVAL,
            help="Seconds between re-reads of the database for changes nobody announced, e.g. raw SQL "
            "edits (default: SCHEDULER_POLL_INTERVAL, %(default)s; at most 0.5 s on SQLite).",
        )
        parser.add_argument(
            "--heartbeat-interval",
            type=_positive_float,
            default=settings.SCHEDULER_HEARTBEAT_INTERVAL,
            help="Seconds between heartbeats; a process is dead after three missed ones "
            "(default: SCHEDULER_HEARTBEAT_INTERVAL, %(default)s).",
        )
        parser.add_argument(
            "--batch-size",
            type=_positive_int,
            default=DEFAULT_BATCH_SIZE,
            help="Most due jobs claimed in one transaction (default: %(default)s).",
        )
        parser.add_argument(
            "--shutdown-timeout",
            type=_positive_float,
            default=settings.SCHEDULER_SHUTDOWN_TIMEOUT,
            help="Seconds to let running inline work finish on SIGINT/SIGTERM "
            "(default: SCHEDULER_SHUTDOWN_TIMEOUT, %(default)s).",
        )

    def handle(self, *args, **options):
        if options["verbosity"] >= 2:
            logging.getLogger("scheduler").setLevel(logging.DEBUG)
        else:
            # APScheduler logs three lines per run at INFO; ours logs the one that matters.
            logging.getLogger("apscheduler").setLevel(logging.WARNING)
        config = EngineConfig(
            workers=options["workers"],
            poll_interval=options["poll_interval"],
            heartbeat_interval=options["heartbeat_interval"],
            batch_size=options["batch_size"],
            shutdown_timeout=options["shutdown_timeout"],
        )
        process = SchedulerProcess(config)
        try:
            process.run_forever()
        except SchedulerAlreadyRunning as exc:
            raise CommandError(str(exc), returncode=3) from None

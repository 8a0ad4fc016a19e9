"""`manage.py check_job`: one job's state, schedule, next run, recent executions and lease holders."""

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from scheduler.durations import relative_words
from scheduler.models import ScheduledJob, SchedulerInstance
from scheduler.selectors import database_now
from scheduler.services.cron import zone_get
from scheduler.services.schedules import job_preview_fire_times, job_schedule_describe

EXIT_NOT_FOUND = 1
EXIT_BAD_ARGUMENTS = 2
MAX_LIMIT = 200
UPCOMING = 5


class Command(BaseCommand):
    help = (
        "Show a job's state, schedule in words, next run, recent executions and the leases "
        "(max_instances slots) its running executions hold. Exit 1 if the job does not exist "
        "or was deleted. --json prints one JSON object for scripts."
    )

    def add_arguments(self, parser):
        parser.add_argument("--job-id", type=int, required=True, help="The job's id.")
        parser.add_argument(
            "--limit", type=int, default=10, help=f"Recent executions to show (1-{MAX_LIMIT}; default 10)."
        )
        parser.add_argument("--json", action="store_true", help="Print JSON instead of text.")

    def handle(self, *args, **options):
        job_id, limit = options["job_id"], options["limit"]
        if not 1 <= limit <= MAX_LIMIT:
            raise CommandError(
                f"--limit must be between 1 and {MAX_LIMIT}; got {limit}.", returncode=EXIT_BAD_ARGUMENTS
            )
        job = (
            ScheduledJob.objects.select_related("task_function", "job_type", "exclude_calendar")
            .filter(pk=job_id)
            .first()
        )
        if job is None:
            raise CommandError(f"No job has id {job_id}.", returncode=EXIT_NOT_FOUND)
        if not job.is_active:
            raise CommandError(
                f"Job {job_id} ({job.name!r}) was deleted on {job.updated_at:%Y-%m-%d %H:%M:%S %Z}; "
                f"it no longer runs. Its history is kept (see the admin's executions page).",
                returncode=EXIT_NOT_FOUND,
            )
        report = _job_report(job, limit)
        if options["json"]:
            self.stdout.write(json.dumps(report, cls=DjangoJSONEncoder, indent=2))
        else:
            self.stdout.write(_as_text(report))


def _job_report(job: ScheduledJob, limit: int) -> dict:
    now = database_now()  # leases and heartbeats are written on the database's clock
    executions = list(job.executions.newest_first()[:limit])
    locks = list(job.leases.order_by("locked_at"))
    alive = set(
        SchedulerInstance.objects.alive(now)
        .filter(instance_id__in={lock.locked_by for lock in locks})
        .values_list("instance_id", flat=True)
    )
    return {
        "id": job.pk,
        "name": job.name,
        "state": job.state,
        "is_enabled": job.is_enabled,
        "is_paused": job.is_paused,
        "pause_reason": job.pause_reason,
        "task_function": job.task_function.name,
        "task_function_active": job.task_function.is_active,
        "offload": job.task_function.offload,
        "job_type": job.job_type.name,
        "schedule": job_schedule_describe(job),
        "cron_expression": job.cron_expression,
        "interval_seconds": job.interval_total_seconds if job.is_interval else None,
        "timezone": job.timezone,
        "next_run_time": job.next_run_time,
        # What the scheduler fires from the next run on (none while disabled or paused).
        "upcoming_fire_times": _upcoming_fire_times(job) if job.can_fire and job.next_run_time else [],
        "last_run_time": job.last_run_time,
        "priority": job.priority,
        "max_instances": job.max_instances,
        "misfire_grace_time": job.misfire_grace_time,
        "coalesce": job.coalesce,
        "history_limit": job.history_limit,
        "disabled_reason": job.disabled_reason,
        "run_at": job.run_at,
        "start_at": job.start_at,
        "end_at": job.end_at,
        "jitter_seconds": job.jitter_seconds,
        "next_start_at": job.start_time,
        "max_runs": job.max_runs,
        "remaining_runs": job.remaining_runs,
        "exclude_calendar": job.exclude_calendar.name if job.exclude_calendar_id else None,
        "leases": [
            {
                "execution_id": lock.execution_id,
                "locked_by": lock.locked_by,
                "holder_alive": lock.locked_by in alive,
                "locked_at": lock.locked_at,
                "expires_at": lock.expires_at,
                "expired": lock.expires_at <= now,
            }
            for lock in locks
        ],
        "recent_executions": [
            {
                "id": execution.pk,
                "status": execution.status,
                "trigger": execution.trigger,
                "scheduled_time": execution.scheduled_time,
                "started_at": execution.started_at,
                "finished_at": execution.finished_at,
                "duration_ms": execution.duration_ms,
                "instance_id": execution.instance_id,
                "error_message": execution.error_message,
            }
            for execution in executions
        ],
    }


def _upcoming_fire_times(job: ScheduledJob) -> list:
    try:
        return job_preview_fire_times(job, count=UPCOMING)
    except ValidationError:  # a schedule with no further fire time: the engine pauses the job
        return []


def _when(value) -> str:
    if value is None:
        return "-"
    return f"{value:%Y-%m-%d %H:%M:%S} UTC ({relative_words(value, timezone.now())})"


def _upcoming(times, zone_name: str) -> str:
    if not times:
        return "-"
    zone = zone_get(zone_name)
    return ", ".join(f"{moment.astimezone(zone):%Y-%m-%d %H:%M %Z}" for moment in times)


def _when_words(report: dict) -> str:
    """The window, jitter, run limit and calendar, in one line."""
    window = (
        f"from {_moment(report['start_at'])} to {_moment(report['end_at'])}"
        if report["start_at"] or report["end_at"]
        else "no window"
    )
    jitter = f"jitter up to {report['jitter_seconds']} s" if report["jitter_seconds"] else "no jitter"
    runs = f"{report['remaining_runs']} of {report['max_runs']} runs left" if report["max_runs"] else "no run limit"
    calendar = f"skips calendar {report['exclude_calendar']!r}" if report["exclude_calendar"] else "no calendar"
    return ", ".join((window, jitter, runs, calendar))


def _moment(value) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M:%S} UTC"


def _as_text(report: dict) -> str:
    state = report["state"]
    if state == "paused" and report["pause_reason"]:
        state += f" ({report['pause_reason']})"
    elif state == "disabled" and report["disabled_reason"]:
        state += f" ({report['disabled_reason']})"
    task = report["task_function"] + (" (offloaded to Celery)" if report["offload"] else " (inline)")
    if not report["task_function_active"]:
        task += " - INACTIVE: runs will fail until the job uses an active function"
    schedule = report["schedule"]
    if report["cron_expression"]:
        schedule += f"  [cron {report['cron_expression']!r}]"
    lines = [
        f"Job {report['id']}: {report['name']}",
        f"  State:      {state}",
        f"  Task:       {task}",
        f"  Schedule:   {schedule}",
        f"  Next run:   {_when(report['next_run_time'])}"
        + ("" if report["next_start_at"] == report["next_run_time"] else f", starts {_when(report['next_start_at'])}"),
        f"  When:       {_when_words(report)}",
        f"  Upcoming:   {_upcoming(report['upcoming_fire_times'], report['timezone'])}",
        f"  Last run:   {_when(report['last_run_time'])}",
        f"  Limits:     max {report['max_instances']} at once, misfire grace {report['misfire_grace_time']} s, "
        f"coalesce {'on' if report['coalesce'] else 'off'}, priority {report['priority']}, "
        f"history limit {report['history_limit'] or 'none'}",
        f"Leases held: {len(report['leases'])}",
    ]
    for lease in report["leases"]:
        holder = "alive" if lease["holder_alive"] else "not heard from"
        expiry = "EXPIRED" if lease["expired"] else f"expires {_when(lease['expires_at'])}"
        lines.append(f"  execution {lease['execution_id']} held by {lease['locked_by']} ({holder}), {expiry}")
    lines.append(f"Recent executions: {len(report['recent_executions'])} (newest first)")
    for execution in report["recent_executions"]:
        duration = "-" if execution["duration_ms"] is None else f"{execution['duration_ms']} ms"
        line = (
            f"  #{execution['id']:<6} {execution['status']:<8} {execution['trigger']:<9} "
            f"{execution['scheduled_time']:%Y-%m-%d %H:%M:%S}  {duration}"
        )
        if execution["error_message"]:
            line += f"  {execution['error_message'].splitlines()[0][:120]}"
        lines.append(line)
    return "\n".join(lines)

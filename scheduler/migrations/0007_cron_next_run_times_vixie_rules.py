"""Recompute the next run of cron jobs whose next fire time the Vixie cron rules move.

Two rules changed what a saved expression means: day of month and day of week must both match
when either starts with '*' ("0 0 */2 * 1" is odd days that are Mondays, no longer every odd day
and every Monday), and a job whose minute or hour starts with '*' keeps its cadence in real time
across a fall-back change. A job's persisted next_run_time was computed by the old rules; where
the new ones give a different first fire time after now, it is replaced; a job whose expression
no longer matches any date is paused with the reason. Overdue rows are left to the engine's
misfire rules, and expressions are kept as written.
"""
from django.db import migrations

CRON = 2  # JobType id, part of the API
BATCH = 1000


def recompute_next_run_times(apps, schema_editor):
    # The pure cron function (no models): what the engine itself will compute from now on.
    from django.utils import timezone

    from scheduler.services.cron import cron_next_fire_time

    ScheduledJob = apps.get_model("scheduler", "ScheduledJob")
    now = timezone.now()
    jobs = (
        ScheduledJob.objects.filter(job_type_id=CRON, is_active=True, is_enabled=True, next_run_time__gt=now)
        .only("pk", "cron_expression", "timezone", "next_run_time")
        .order_by("pk")
    )
    changed = []
    for job in jobs.iterator(chunk_size=BATCH):
        try:
            next_run_time = cron_next_fire_time(job.cron_expression, job.timezone, now)
        except (ValueError, OverflowError) as exc:
            # An expression that no longer matches any date ("0 0 30 2 */2": February 30th that is
            # an even weekday) can never fire again: paused, saying why, as the engine would.
            ScheduledJob.objects.filter(pk=job.pk).update(
                is_paused=True,
                pause_reason=f"paused on upgrade: its schedule has no next fire time under the Vixie cron "
                f"rules ({exc}); fix the schedule, then resume"[:1000],
            )
            continue
        if next_run_time != job.next_run_time:
            job.next_run_time = next_run_time
            changed.append(job)
        if len(changed) == BATCH:
            ScheduledJob.objects.bulk_update(changed, ["next_run_time"])
            changed = []
    ScheduledJob.objects.bulk_update(changed, ["next_run_time"])


class Migration(migrations.Migration):
    dependencies = [("scheduler", "0006_instance_clock_offset")]

    operations = [migrations.RunPython(recompute_next_run_times, migrations.RunPython.noop)]

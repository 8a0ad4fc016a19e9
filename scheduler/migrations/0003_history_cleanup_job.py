"""Create the built-in job that applies the execution-history retention policy every night."""
from django.conf import settings
from django.db import migrations

CLEANUP_FUNCTION = "tasks.functions.cleanup_executions"
CLEANUP_JOB = "Execution history cleanup"


def create_cleanup_job(apps, schema_editor):
    TaskFunction = apps.get_model("scheduler", "TaskFunction")
    ScheduledJob = apps.get_model("scheduler", "ScheduledJob")
    # The registry sync runs after migrate and fills in the rest of this row.
    task_function, _ = TaskFunction.objects.get_or_create(name=CLEANUP_FUNCTION)
    if ScheduledJob.objects.filter(name=CLEANUP_JOB, is_active=True).exists():
        return
    from scheduler.services.cron import cron_next_fire_time
    from django.utils import timezone

    ScheduledJob.objects.create(
        name=CLEANUP_JOB,
        description=(
            "Deletes finished executions older than SCHEDULER_HISTORY_RETENTION_DAYS "
            "(pass older_than_days in kwargs to override). Edit or disable it like any job."
        ),
        task_function=task_function,
        job_type_id=2,
        cron_expression="30 3 * * *",
        timezone=settings.TIME_ZONE,
        args=[],
        kwargs={},
        next_run_time=cron_next_fire_time("30 3 * * *", settings.TIME_ZONE, timezone.now()),
    )


class Migration(migrations.Migration):
    dependencies = [("scheduler", "0002_job_types")]

    operations = [migrations.RunPython(create_cleanup_job, migrations.RunPython.noop)]

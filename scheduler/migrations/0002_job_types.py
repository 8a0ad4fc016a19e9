"""Create the two job types; their ids (1 interval, 2 cron) are part of the API."""
from django.db import migrations

JOB_TYPES = [
    (1, "interval", "Runs every fixed interval from its anchor time."),
    (2, "cron", "Runs at the times a standard 5-field cron expression matches."),
]


def create_job_types(apps, schema_editor):
    JobType = apps.get_model("scheduler", "JobType")
    for pk, name, description in JOB_TYPES:
        JobType.objects.update_or_create(pk=pk, defaults={"name": name, "description": description})


class Migration(migrations.Migration):
    dependencies = [("scheduler", "0001_initial")]

    operations = [migrations.RunPython(create_job_types, migrations.RunPython.noop)]

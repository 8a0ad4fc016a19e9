"""ScheduledJobLock is called JobLease (it is a lease on a max_instances slot); its table keeps its name."""
import django.db.models.deletion
from django.db import migrations, models


def permissions_rename(apps, schema_editor, old="scheduledjoblock", new="joblease"):
    """Groups and users keep their lease permissions: the rows are renamed with the model."""
    Permission = apps.get_model("auth", "Permission")
    for permission in Permission.objects.filter(content_type__app_label="scheduler", codename__endswith=f"_{old}"):
        permission.codename = permission.codename.replace(f"_{old}", f"_{new}")
        permission.name = permission.name.replace("scheduled job lock", "job lease")
        permission.save(update_fields=["codename", "name"])


def permissions_rename_back(apps, schema_editor):
    permissions_rename(apps, schema_editor, old="joblease", new="scheduledjoblock")


class Migration(migrations.Migration):
    dependencies = [("scheduler", "0004_interval_check_counts_nulls"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [
        # Pin the table name first, so the rename changes names in Python only.
        migrations.AlterModelTable(name="scheduledjoblock", table="scheduler_scheduledjoblock"),
        migrations.RenameModel(old_name="ScheduledJobLock", new_name="JobLease"),
        migrations.AlterField(
            model_name="joblease",
            name="job",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="leases", to="scheduler.scheduledjob"
            ),
        ),
        migrations.AlterField(
            model_name="joblease",
            name="execution",
            field=models.OneToOneField(
                on_delete=django.db.models.deletion.CASCADE, related_name="lease", to="scheduler.jobexecution"
            ),
        ),
        migrations.RunPython(permissions_rename, permissions_rename_back),
    ]

"""ScheduledJobLock is called JobLease (it is a lease on a max_instances slot); its table keeps its name."""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("scheduler", "0004_interval_check_counts_nulls")]

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
    ]

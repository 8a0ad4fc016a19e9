"""Fleet scale: run and job summaries kept by the database, and the indexes the operator's pages read.

The new indexes are built with CREATE INDEX CONCURRENTLY on PostgreSQL, so an installation with a
long history keeps recording runs while they build (which is why this migration is not atomic).
The summaries are counted once from the tables here; from then on the triggers that
backends/ install keep them (and install again after every migrate: see apps.py).
"""

import django.db.models.deletion
from django.db import migrations, models


class AddIndexConcurrentlyOnPostgreSQL(migrations.AddIndex):
    """AddIndex that does not block writes on PostgreSQL; a plain CREATE INDEX elsewhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.add_index(model, self.index, concurrently=True)
        else:
            schema_editor.add_index(model, self.index)


def summaries_start(apps, schema_editor):
    from scheduler.backends import BACKENDS

    backend = BACKENDS[schema_editor.connection.vendor]()
    backend.summaries_install(using=schema_editor.connection.alias)
    backend.summaries_rebuild(using=schema_editor.connection.alias)


def summaries_stop(apps, schema_editor):
    from scheduler.backends import BACKENDS

    BACKENDS[schema_editor.connection.vendor]().summaries_uninstall(using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("scheduler", "0009_declared_jobs")]

    operations = [
        migrations.CreateModel(
            name="ExecutionSummary",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("minute", models.DateTimeField(help_text="Start of the UTC minute.")),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("waiting", "Waiting"),
                            ("running", "Running"),
                            ("success", "Success"),
                            ("failed", "Failed"),
                            ("timed_out", "timed out"),
                            ("cancelled", "Cancelled"),
                            ("skipped", "Skipped"),
                            ("missed", "Missed"),
                        ],
                        max_length=10,
                    ),
                ),
                ("shard", models.PositiveSmallIntegerField(default=0)),
                ("runs", models.BigIntegerField(default=0)),
                (
                    "timed",
                    models.BigIntegerField(
                        default=0, help_text="Runs with a time: durations of ends, lags of scheduled starts."
                    ),
                ),
                ("total_ms", models.BigIntegerField(default=0)),
                ("max_ms", models.BigIntegerField(blank=True, null=True)),
                ("le_100ms", models.BigIntegerField(default=0)),
                ("le_250ms", models.BigIntegerField(default=0)),
                ("le_500ms", models.BigIntegerField(default=0)),
                ("le_1s", models.BigIntegerField(default=0)),
                ("le_2500ms", models.BigIntegerField(default=0)),
                ("le_5s", models.BigIntegerField(default=0)),
                ("le_15s", models.BigIntegerField(default=0)),
                ("le_1m", models.BigIntegerField(default=0)),
                ("le_5m", models.BigIntegerField(default=0)),
                ("le_15m", models.BigIntegerField(default=0)),
                ("le_1h", models.BigIntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("minute", "status", "shard"), name="scheduler_summary_unique_minute"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="JobTally",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("is_active", models.BooleanField()),
                ("is_enabled", models.BooleanField()),
                ("is_paused", models.BooleanField()),
                ("shard", models.PositiveSmallIntegerField(default=0)),
                ("jobs", models.BigIntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("is_active", "is_enabled", "is_paused", "shard"),
                        name="scheduler_jobtally_unique_state",
                    )
                ],
            },
        ),
        AddIndexConcurrentlyOnPostgreSQL(
            model_name="jobexecution",
            index=models.Index(fields=["created_at", "id"], name="scheduler_exec_created_idx"),
        ),
        AddIndexConcurrentlyOnPostgreSQL(
            model_name="jobexecution",
            index=models.Index(fields=["job", "status", "-created_at"], name="scheduler_exec_job_status_idx"),
        ),
        AddIndexConcurrentlyOnPostgreSQL(
            model_name="scheduledjob",
            index=models.Index(
                condition=models.Q(("is_active", True)), fields=["next_run_time", "id"], name="scheduler_job_next_run_idx"
            ),
        ),
        # scheduler_exec_job_recent_idx (job, -created_at) serves every lookup by job.
        migrations.AlterField(
            model_name="jobexecution",
            name="job",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="executions",
                to="scheduler.scheduledjob",
            ),
        ),
        migrations.RunPython(summaries_start, summaries_stop),
    ]

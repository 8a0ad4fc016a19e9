"""A fire time runs once whichever way it ran: the unique (job, fire time) index of executions
widened to backfilled runs, swapped without blocking writes on PostgreSQL.

The new index is built under a temporary name with CREATE UNIQUE INDEX CONCURRENTLY (a long history
keeps recording runs meanwhile, and the old index guards them until then), the old one dropped
concurrently, and the new one renamed: which is why this migration is not atomic. Elsewhere, a
plain drop and create.
"""

from django.db import migrations, models

NAME = "scheduler_exec_unique_scheduled_run"
BUILDING = "scheduler_exec_unique_fire_time_new"
OLD = models.UniqueConstraint(condition=models.Q(trigger="scheduled"), fields=("job", "scheduled_time"), name=NAME)
NEW = models.UniqueConstraint(
    condition=models.Q(trigger__in=("scheduled", "backfill")), fields=("job", "scheduled_time"), name=NAME
)


class SwapUniqueConstraintConcurrentlyOnPostgreSQL(migrations.operations.base.Operation):
    """Replace the partial unique constraint `old` by `new` (same name) on `model_name`."""

    reversible = True

    def __init__(self, model_name, old, new):
        self.model_name, self.old, self.new = model_name, old, new

    def state_forwards(self, app_label, state):
        state.remove_constraint(app_label, self.model_name, self.old.name)
        state.add_constraint(app_label, self.model_name, self.new)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._swap(app_label, schema_editor, to_state, self.old, self.new)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._swap(app_label, schema_editor, from_state, self.new, self.old)

    def _swap(self, app_label, schema_editor, state, old, new):
        model = state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor != "postgresql":
            schema_editor.remove_constraint(model, old)
            schema_editor.add_constraint(model, new)
            return
        quote = schema_editor.quote_name
        building = models.UniqueConstraint(condition=new.condition, fields=new.fields, name=BUILDING)
        create = str(building.create_sql(model, schema_editor))
        # A build an earlier attempt left unfinished is invalid: start again.
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote(BUILDING)}")
        schema_editor.execute(create.replace("CREATE UNIQUE INDEX", "CREATE UNIQUE INDEX CONCURRENTLY", 1))
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote(old.name)}")
        schema_editor.execute(f"ALTER INDEX {quote(BUILDING)} RENAME TO {quote(new.name)}")

    def describe(self):
        return f"Replace the unique constraint {self.old.name} on {self.model_name} (concurrently on PostgreSQL)"

    @property
    def migration_name_fragment(self):
        return f"swap_{self.old.name.lower()}"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("scheduler", "0012_when_a_job_runs")]

    operations = [SwapUniqueConstraintConcurrentlyOnPostgreSQL("jobexecution", OLD, NEW)]

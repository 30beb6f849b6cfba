"""The newest jobs of a name or a queue, read in order: the dashboard's and the admin's filters
found a queue's 50 newest jobs by walking the whole history newest first (a rare queue's at its
end), and a name's by reading all of that name's jobs to sort them. `job_by_name` replaces the
index on the name alone, which served equalities only.

The indexes are built without holding writes: on PostgreSQL with CREATE INDEX CONCURRENTLY
(which cannot run in a transaction: this migration is not atomic), so that jobs go on being
recorded and finished while it builds; SQLite builds under its write lock either way."""

from typing import Any

from django.db import migrations, models


def _concurrently(schema_editor: Any) -> bool:
    return bool(schema_editor.connection.vendor == "postgresql")


class AddIndexWithoutBlockingWrites(migrations.AddIndex):
    """Django's AddIndexConcurrently where the database has it (PostgreSQL), AddIndex elsewhere."""

    def _without_blocking(self, schema_editor, model, change):
        """add_index or remove_index CONCURRENTLY on PostgreSQL: True if done; elsewhere
        False, and the caller does what AddIndex does."""
        if not (
            _concurrently(schema_editor)
            and self.allow_migrate_model(schema_editor.connection.alias, model)
        ):
            return False
        getattr(schema_editor, change)(model, self.index, concurrently=True)
        return True

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self._without_blocking(schema_editor, model, "add_index"):
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self._without_blocking(schema_editor, model, "remove_index"):
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def drop_the_index_on_the_name_alone(apps: Any, schema_editor: Any) -> None:
    """By what the database says it holds: the index's name is Django's hash of the field, and
    PostgreSQL also has a second one for LIKE (varchar_pattern_ops). Dropping them in place
    spares SQLite the copy of the whole table that AlterField makes there."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, "jobs_job")
    for name, index in found.items():
        if index["index"] and not index["unique"] and index["columns"] == ["name"]:
            how = "CONCURRENTLY " if _concurrently(schema_editor) else ""
            schema_editor.execute(f"DROP INDEX {how}{schema_editor.quote_name(name)}")


def index_the_name_alone_again(apps: Any, schema_editor: Any) -> None:
    """Back to 0013's state, without holding writes either. Its name is not Django's hash, which
    nothing needs: Django finds a field's index by its columns."""
    how = "CONCURRENTLY " if _concurrently(schema_editor) else ""
    schema_editor.execute(f'CREATE INDEX {how}"jobs_job_name_only" ON "jobs_job" ("name")')


class Migration(migrations.Migration):
    atomic = False  # CREATE and DROP INDEX CONCURRENTLY (PostgreSQL)

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("jobs", "0013_fewer_state_indexes"),
    ]

    operations = [
        AddIndexWithoutBlockingWrites(
            model_name="job",
            index=models.Index(fields=["name", "created_at"], name="job_by_name"),
        ),
        AddIndexWithoutBlockingWrites(
            model_name="job",
            index=models.Index(fields=["queue", "created_at"], name="job_by_queue"),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="job",
                    name="name",
                    field=models.CharField(max_length=100),
                ),
            ],
            database_operations=[
                migrations.RunPython(drop_the_index_on_the_name_alone, index_the_name_alone_again),
            ],
        ),
    ]

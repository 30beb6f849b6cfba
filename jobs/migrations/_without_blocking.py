"""Index changes to the ledger that do not hold its writes, for the migrations that need them.

On PostgreSQL, CREATE and DROP INDEX CONCURRENTLY: jobs go on being recorded and finished while
an index is built or dropped (they cannot run in a transaction, so a migration that uses them
says `atomic = False`). SQLite takes its write lock for either, whatever the statement.

Not a migration itself (Django's loader skips modules whose name starts with "_"); a migration
that imports from here runs what is here at the time it runs, so change it only compatibly.
"""

import functools
from typing import Any

from django.db import migrations


def concurrently(schema_editor: Any) -> bool:
    return bool(schema_editor.connection.vendor == "postgresql")


class AddIndexWithoutBlockingWrites(migrations.AddIndex):
    """Django's AddIndexConcurrently where the database has it (PostgreSQL), AddIndex elsewhere."""

    def _without_blocking(self, schema_editor: Any, model: Any, change: str) -> bool:
        """add_index or remove_index CONCURRENTLY on PostgreSQL: True if done; elsewhere
        False, and the caller does what AddIndex does."""
        if not (
            concurrently(schema_editor)
            and self.allow_migrate_model(schema_editor.connection.alias, model)
        ):
            return False
        getattr(schema_editor, change)(model, self.index, concurrently=True)
        return True

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self._without_blocking(schema_editor, model, "add_index"):
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self._without_blocking(schema_editor, model, "remove_index"):
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def drop_single_column_indexes(schema_editor: Any, *, table: str, column: str) -> None:
    """Drop every plain index of `table` on `column` alone, by what the database says it holds:
    Django names a field's index by a hash, and PostgreSQL has a second one for LIKE on a text
    column (varchar_pattern_ops). Dropping them in place spares SQLite the copy of the whole
    table that an AlterField makes there."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, table)
    for name, index in found.items():
        if index["index"] and not index["unique"] and index["columns"] == [column]:
            how = "CONCURRENTLY " if concurrently(schema_editor) else ""
            schema_editor.execute(f"DROP INDEX {how}{schema_editor.quote_name(name)}")


def create_single_column_index(schema_editor: Any, *, table: str, column: str, name: str) -> None:
    """An index on `column` alone again (a backward step). Its name need not be Django's hash:
    Django finds a field's index by its columns. One left behind by a build that stopped
    midway (PostgreSQL keeps it, marked invalid) is dropped first, so the step can be rerun."""
    how = "CONCURRENTLY " if concurrently(schema_editor) else ""
    quote = schema_editor.quote_name
    schema_editor.execute(f"DROP INDEX {how}IF EXISTS {quote(name)}")
    schema_editor.execute(f"CREATE INDEX {how}{quote(name)} ON {quote(table)} ({quote(column)})")


def _drop_the_index(apps: Any, schema_editor: Any, *, table: str, column: str) -> None:
    drop_single_column_indexes(schema_editor, table=table, column=column)


def _build_the_index_again(
    apps: Any, schema_editor: Any, *, table: str, column: str, name: str
) -> None:
    create_single_column_index(schema_editor, table=table, column=column, name=name)


def index_on_one_column_dropped(*, table: str, column: str, name: str) -> migrations.RunPython:
    """The operation that drops `table`'s index on `column` alone (forward), and builds it
    again as `name` (backward), neither holding writes. Partials of module functions, not
    lambdas: Django can write them out when migrations are squashed."""
    return migrations.RunPython(
        functools.partial(_drop_the_index, table=table, column=column),
        functools.partial(_build_the_index_again, table=table, column=column, name=name),
    )

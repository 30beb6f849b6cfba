"""The ledger's migrations can be squashed: Django writes every operation of a squashed
migration out as code, and refuses one it cannot (a lambda, a local function)."""

import importlib

import pytest
from django.db.migrations.writer import MigrationWriter

from jobs.migrations._without_blocking import index_on_one_column_dropped


@pytest.mark.parametrize(
    "migration",
    ["0014_jobs_by_name_and_queue", "0015_no_second_index_on_the_concerned_type"],
)
def test_every_operation_of_the_index_migrations_can_be_written_out(migration):
    module = importlib.import_module(f"jobs.migrations.{migration}")
    for operation in module.Migration.operations:
        MigrationWriter.serialize(operation)  # raises ValueError if it cannot


def test_the_drop_of_a_one_column_index_written_out_names_its_table_column_and_index():
    operation = index_on_one_column_dropped(table="jobs_job", column="name", name="jobs_x")
    written, _ = MigrationWriter.serialize(operation)
    assert "'jobs_job'" in written
    assert "'name'" in written
    assert "'jobs_x'" in written

"""One index entry fewer in every job's INSERT: the foreign key's own index on
`concerning_type` repeated the first column of `job_concerning` (concerning_type,
concerning_id, created_at), which serves every lookup by the type alone as well.

Dropped without holding writes (DROP INDEX CONCURRENTLY on PostgreSQL: this migration is not
atomic), and in place on SQLite, where an AlterField would copy the whole table."""

from typing import Any

import django.db.models.deletion
from django.db import migrations, models

from jobs.migrations._without_blocking import (
    create_single_column_index,
    drop_single_column_indexes,
)


def drop_the_index_on_the_type_alone(apps: Any, schema_editor: Any) -> None:
    drop_single_column_indexes(schema_editor, table="jobs_job", column="concerning_type_id")


def index_the_type_alone_again(apps: Any, schema_editor: Any) -> None:
    create_single_column_index(
        schema_editor,
        table="jobs_job",
        column="concerning_type_id",
        name="jobs_job_concerning_type_only",
    )


class Migration(migrations.Migration):
    atomic = False  # DROP and CREATE INDEX CONCURRENTLY (PostgreSQL)

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("jobs", "0014_jobs_by_name_and_queue"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="job",
                    name="concerning_type",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="contenttypes.contenttype",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunPython(drop_the_index_on_the_type_alone, index_the_type_alone_again),
            ],
        ),
    ]

"""One index entry fewer in every job's INSERT: the foreign key's own index on
`concerning_type` repeated the first column of `job_concerning` (concerning_type,
concerning_id, created_at), which serves every lookup by the type alone as well.

Dropped without holding writes (DROP INDEX CONCURRENTLY on PostgreSQL: this migration is not
atomic), and in place on SQLite, where an AlterField would copy the whole table."""

import django.db.models.deletion
from django.db import migrations, models

from jobs.migrations._without_blocking import index_on_one_column_dropped


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
                index_on_one_column_dropped(
                    table="jobs_job",
                    column="concerning_type_id",
                    name="jobs_job_concerning_type_only",
                ),
            ],
        ),
    ]

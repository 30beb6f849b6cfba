"""The newest jobs of a name or a queue, read in order: the dashboard's and the admin's filters
found a queue's 50 newest jobs by walking the whole history newest first (a rare queue's at its
end), and a name's by reading all of that name's jobs to sort them. `job_by_name` replaces the
index on the name alone, which served equalities only.

The indexes are built without holding writes: on PostgreSQL with CREATE INDEX CONCURRENTLY
(which cannot run in a transaction: this migration is not atomic), so that jobs go on being
recorded and finished while it builds; SQLite builds under its write lock either way."""

from django.db import migrations, models

from jobs.migrations._without_blocking import (
    AddIndexWithoutBlockingWrites,
    index_on_one_column_dropped,
)


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
                index_on_one_column_dropped(
                    table="jobs_job", column="name", name="jobs_job_name_only"
                ),
            ],
        ),
    ]

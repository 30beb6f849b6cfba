"""Counts that stay flat as the ledger grows (jobs.models.JobCount): triggers keep how many
jobs are in each final state, in the statement that moves a job, and the initial counts are
taken once here. The (state, finished_at) index replaces (finished_at): it serves the
dashboard's "finished in the last minute" and the purge's batch pick alone. The open dead
letters get an index of their own: the stats count them, the dashboard lists them."""

from django.db import migrations, models

from jobs import counts


def install(apps, schema_editor):
    counts.install(schema_editor.connection)


def uninstall(apps, schema_editor):
    counts.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("jobs", "0010_cancel_requested"),
    ]

    operations = [
        migrations.CreateModel(
            name="JobCount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("state", models.CharField(max_length=12)),
                ("shard", models.SmallIntegerField(default=0)),
                ("n", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.AddConstraint(
            model_name="jobcount",
            constraint=models.UniqueConstraint(
                fields=("state", "shard"), name="jobcount_state_shard"
            ),
        ),
        migrations.RemoveIndex(model_name="job", name="job_finished_at"),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(fields=["state", "finished_at"], name="job_state_finished"),
        ),
        migrations.AddIndex(
            model_name="deadletter",
            index=models.Index(
                condition=models.Q(("status", "open")), fields=["failed_at"], name="deadletter_open"
            ),
        ),
        migrations.RunPython(install, uninstall),
    ]

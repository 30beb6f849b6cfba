"""Fewer index entries written as a job moves. An index is written each time a row moves in or
out of it or changes a column of it, and four indexes led with the state, each holding every
row: a no-op job's claim and finish wrote 16 entries. Now the live jobs have one index of their
own (job_live), the due sweep's holds only the scheduled jobs, and the finished jobs have two,
by end (the purge, "finished in the last minute") and by creation (the dashboard's and the
admin's lists of a final state): 5 entries.

On PostgreSQL the migration is one transaction whose CREATE INDEX statements hold writes to
jobs_job until it commits: at 300,000 rows three of these four took about 0.4 s (a review's
measurement); on a ledger of millions, run it when a pause of seconds in recording and finishing jobs is acceptable."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("jobs", "0012_single_schedules"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                condition=models.Q(
                    ("state", "scheduled"),
                    ("state", "queued"),
                    ("state", "running"),
                    ("state", "retrying"),
                    _connector="OR",
                ),
                fields=["state", "published_at"],
                name="job_live",
            ),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                condition=models.Q(("state", "scheduled")),
                fields=["state", "eta"],
                name="job_due",
            ),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                condition=models.Q(("finished_at__isnull", False)),
                fields=["state", "finished_at"],
                name="job_finished",
            ),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                condition=models.Q(
                    ("state", "succeeded"),
                    ("state", "dead"),
                    ("state", "cancelled"),
                    ("state", "skipped"),
                    ("state", "declined"),
                    _connector="OR",
                ),
                fields=["state", "created_at"],
                name="job_ended",
            ),
        ),
        migrations.RemoveIndex(model_name="job", name="job_state_published"),
        migrations.RemoveIndex(model_name="job", name="job_state_eta"),
        migrations.RemoveIndex(model_name="job", name="job_state_lease"),
        migrations.RemoveIndex(model_name="job", name="job_state_finished"),
    ]

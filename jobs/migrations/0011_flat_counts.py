# ruff: noqa: S608 - the SQL is built from this file's constants, never from input
"""Counts that stay flat as the ledger grows (jobs.models.JobCount): triggers keep how many
jobs are in each final state, in the statement that moves a job, and the initial counts are
taken once here. The (state, finished_at) index replaces (finished_at): it serves the
dashboard's "finished in the last minute" and the purge's batch pick alone. The open dead
letters get an index of their own: the stats count them, the dashboard lists them."""

from django.db import migrations, models

# Frozen here, as a migration must be: Job.FINAL_STATES when this was written. A new final
# state needs a migration that replaces the triggers (tests/jobs/test_flat_counts.py fails
# until it has one).
FINAL = ("succeeded", "dead", "cancelled", "skipped", "declined")
IN_FINAL = "(" + ", ".join(f"'{state}'" for state in FINAL) + ")"
# PostgreSQL: each session adds to its own of this many rows per state (jobs.models.JobCount).
SHARDS = 8

# SQLite: one row per state. A count is taken from with an UPDATE, not an upsert: its row
# exists since the job was counted in, unless the count rows were emptied first (Django's
# flush empties every table in no set order), and then nothing is left to take from.
SQLITE = [
    f"""CREATE TRIGGER jobs_count_inserted AFTER INSERT ON jobs_job
    WHEN NEW.state IN {IN_FINAL}
    BEGIN
        INSERT INTO jobs_jobcount (state, shard, n) VALUES (NEW.state, 0, 1)
        ON CONFLICT (state, shard) DO UPDATE SET n = n + 1;
    END""",
    f"""CREATE TRIGGER jobs_count_deleted AFTER DELETE ON jobs_job
    WHEN OLD.state IN {IN_FINAL}
    BEGIN
        UPDATE jobs_jobcount SET n = n - 1 WHERE state = OLD.state AND shard = 0;
    END""",
    f"""CREATE TRIGGER jobs_count_entered AFTER UPDATE OF state ON jobs_job
    WHEN NEW.state IS NOT OLD.state AND NEW.state IN {IN_FINAL}
    BEGIN
        INSERT INTO jobs_jobcount (state, shard, n) VALUES (NEW.state, 0, 1)
        ON CONFLICT (state, shard) DO UPDATE SET n = n + 1;
    END""",
    f"""CREATE TRIGGER jobs_count_left AFTER UPDATE OF state ON jobs_job
    WHEN NEW.state IS NOT OLD.state AND OLD.state IN {IN_FINAL}
    BEGIN
        UPDATE jobs_jobcount SET n = n - 1 WHERE state = OLD.state AND shard = 0;
    END""",
]
SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS {name}"
    for name in (
        "jobs_count_inserted",
        "jobs_count_deleted",
        "jobs_count_entered",
        "jobs_count_left",
    )
]


def _add(state: str, n: int) -> str:
    return f"""INSERT INTO jobs_jobcount (state, shard, n)
            VALUES ({state}, pg_backend_pid() % {SHARDS}, {n})
            ON CONFLICT (state, shard) DO UPDATE SET n = jobs_jobcount.n + EXCLUDED.n;"""


POSTGRESQL = [
    # A job's state change: one row's trigger, called only when a final state is involved (the
    # WHEN clause is checked without calling the function: a claim pays nothing here).
    f"""CREATE FUNCTION jobs_count_state_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.state IN {IN_FINAL} THEN
            {_add("OLD.state", -1)}
        END IF;
        IF NEW.state IN {IN_FINAL} THEN
            {_add("NEW.state", 1)}
        END IF;
        RETURN NULL;
    END $$""",
    f"""CREATE TRIGGER jobs_count_state_change AFTER UPDATE OF state ON jobs_job
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state
                       AND (OLD.state IN {IN_FINAL} OR NEW.state IN {IN_FINAL}))
    EXECUTE FUNCTION jobs_count_state_change()""",
    # Rows written or deleted many at a time (a purge's batch, a bulk load): once per
    # statement, from its transition table. Row by row, one transaction would stack up as
    # many versions of a count's row as it has rows, each update walking them all.
    f"""CREATE FUNCTION jobs_count_rows() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO jobs_jobcount (state, shard, n)
        SELECT state, pg_backend_pid() % {SHARDS},
               CASE WHEN TG_OP = 'DELETE' THEN -count(*) ELSE count(*) END
        FROM changed_rows WHERE state IN {IN_FINAL} GROUP BY state
        ON CONFLICT (state, shard) DO UPDATE SET n = jobs_jobcount.n + EXCLUDED.n;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER jobs_count_inserted AFTER INSERT ON jobs_job
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT
    EXECUTE FUNCTION jobs_count_rows()""",
    """CREATE TRIGGER jobs_count_deleted AFTER DELETE ON jobs_job
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT
    EXECUTE FUNCTION jobs_count_rows()""",
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS jobs_count_state_change ON jobs_job",
    "DROP TRIGGER IF EXISTS jobs_count_inserted ON jobs_job",
    "DROP TRIGGER IF EXISTS jobs_count_deleted ON jobs_job",
    "DROP FUNCTION IF EXISTS jobs_count_state_change()",
    "DROP FUNCTION IF EXISTS jobs_count_rows()",
]


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = {"sqlite": SQLITE, "postgresql": POSTGRESQL}.get(vendor)
    if statements is None:
        raise NotImplementedError(f"no job count triggers for {vendor}")
    for statement in statements:
        schema_editor.execute(statement, params=None)
    # The rows there are now. On PostgreSQL, creating the triggers locked the table against
    # writes until this migration commits: nothing moves between the triggers and this count.
    schema_editor.execute(
        f"INSERT INTO jobs_jobcount (state, shard, n) SELECT state, 0, COUNT(*) FROM jobs_job"
        f" WHERE state IN {IN_FINAL} GROUP BY state",
        params=None,
    )


def uninstall(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in {"sqlite": SQLITE_DROP, "postgresql": POSTGRESQL_DROP}.get(vendor, []):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("jobs", "0009_outcomes_and_progress"),
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

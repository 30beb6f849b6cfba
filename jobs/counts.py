"""The job counts' triggers (jobs.models.JobCount): the SQL that keeps how many jobs are in
each final state, installed by migration 0011_flat_counts, and again after any migration that
left jobs_job without them.

SQLite drops a table's triggers with the table, and Django's SQLite schema editor rebuilds
jobs_job for most field changes (a new table, the rows copied, the old one dropped). A later
migration that alters a Job field would leave the counts unkept from then on. So after every
`migrate` (and every flush between transactional tests) `ensure_installed` looks: triggers
missing are installed again and the counts taken again, in one transaction that holds the
database's write lock (SQLite) or a lock against writes to jobs_job (PostgreSQL), so that
nothing moves between the two.
"""

from typing import Any

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

# ruff: noqa: S608 - the SQL is built from this module's constants, never from input

# Job.FINAL_STATES, as the triggers name them. A new final state needs them replaced
# (tests/jobs/test_flat_counts.py fails until they are).
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


TRIGGERS = {
    "sqlite": {
        "jobs_count_inserted",
        "jobs_count_deleted",
        "jobs_count_entered",
        "jobs_count_left",
    },
    "postgresql": {"jobs_count_inserted", "jobs_count_deleted", "jobs_count_state_change"},
}


def installed(connection: BaseDatabaseWrapper) -> set[str]:
    """The names of the count triggers on jobs_job now."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'jobs_job'"
            )
        else:
            cursor.execute(
                "SELECT tgname FROM pg_trigger"
                " WHERE tgrelid = 'jobs_job'::regclass AND NOT tgisinternal"
            )
        return {name for (name,) in cursor.fetchall()} & TRIGGERS[connection.vendor]


def install(connection: BaseDatabaseWrapper) -> None:
    """(Re)create the triggers and take the counts of the rows there are now, at once. Call it
    in a transaction (a migration's, or ensure_installed's)."""
    vendor = connection.vendor
    if vendor not in TRIGGERS:
        raise NotImplementedError(f"no job count triggers for {vendor}")
    with connection.cursor() as cursor:
        # First the lock, held until commit, so that nothing moves between the triggers and
        # the count: on PostgreSQL against writes to jobs_job (it waits for those under way,
        # whose triggers may still add to the counts); on SQLite the database's write lock,
        # which the first write takes.
        if vendor == "postgresql":
            cursor.execute("LOCK TABLE jobs_job IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute("DELETE FROM jobs_jobcount")
        for statement in {"sqlite": SQLITE_DROP, "postgresql": POSTGRESQL_DROP}[vendor]:
            cursor.execute(statement)
        for statement in {"sqlite": SQLITE, "postgresql": POSTGRESQL}[vendor]:
            cursor.execute(statement)
        cursor.execute(
            "INSERT INTO jobs_jobcount (state, shard, n) SELECT state, 0, COUNT(*) FROM jobs_job"
            f" WHERE state IN {IN_FINAL} GROUP BY state"
        )


def uninstall(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        for statement in {"sqlite": SQLITE_DROP, "postgresql": POSTGRESQL_DROP}.get(
            connection.vendor, []
        ):
            cursor.execute(statement)


def ensure_installed(*, using: str = "default", **kwargs: Any) -> None:
    """After `migrate` (django's post_migrate): if a count trigger is missing (a migration
    rebuilt jobs_job), install them again and count afresh."""
    from django.db import connections

    connection = connections[using]
    if connection.vendor not in TRIGGERS:
        return
    tables = connection.introspection.table_names()
    if "jobs_job" not in tables or "jobs_jobcount" not in tables:
        return  # migrated back before the counts, or not yet migrated at all
    if installed(connection) == TRIGGERS[connection.vendor]:
        return
    with transaction.atomic(using=using):
        install(connection)

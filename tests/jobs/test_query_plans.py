"""What the ledger's readers cost does not grow with its history: every query that the stats,
the relay's sweeps, the purge and the dashboard's lists make on jobs_job reads an index, never
the whole table nor an index of every finished job, as the database plans it with its
parameters bound (SQLite uses a partial index only when it can see that the bound values fall
inside it). The indexes hold as few rows as their readers need (jobs.models.Job.Meta)."""

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Model
from django.utils import timezone

from jobs import broker, operations, relay, retention
from jobs.models import DeadLetter, Job

pytestmark = pytest.mark.django_db
State = Job.State


@contextmanager
def statements() -> Iterator[list[tuple[str, Any]]]:
    """The SQL run inside the block, each with the parameters it was run with."""
    ran: list[tuple[str, Any]] = []

    def record(execute, sql, params, many, context):
        ran.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield ran


def plans(ran: list[tuple[str, Any]], table: str) -> dict[str, str]:
    """Each SELECT on `table` with the plan the database makes for it, parameters bound."""
    found: dict[str, str] = {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A table this small is read whole whenever that is cheaper: forbid it, and a
            # query that has no index to use still shows a sequential scan.
            cursor.execute("SET LOCAL enable_seqscan = off")
        for sql, params in ran:
            if not sql.startswith("SELECT") or f'"{table}"' not in sql or sql in found:
                continue
            if connection.vendor == "sqlite":
                cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
                found[sql] = " / ".join(row[-1] for row in cursor.fetchall())
            else:
                cursor.execute(f"EXPLAIN {sql}", params)
                found[sql] = " / ".join(row[0] for row in cursor.fetchall())
    return found


# Partial indexes of rows that do not pile up with the ledger's history (the live jobs, the
# scheduled ones, the stalled ones): reading one whole is what it is for. The finished jobs'
# indexes hold nearly every row: a query must seek in them.
FEW_ROWS = {"job_live", "job_due", "job_stalled"}


def reads_whole(plan: str, model: type[Model]) -> bool:
    """Whether the plan reads the table, or an index that grows with it, from end to end."""
    table = model._meta.db_table
    if connection.vendor == "sqlite":
        scans = re.finditer(rf"\bSCAN {table}\b(?: USING (?:COVERING )?INDEX (\w+))?", plan)
        return any(scan.group(1) not in FEW_ROWS for scan in scans)
    # PostgreSQL: a sequential scan, or an index scan with no condition to seek by.
    if re.search(rf"Seq Scan on {table}\b", plan):
        return True
    for scan in re.finditer(r"Index (?:Only )?Scan (?:Backward )?using (\w+) on " + table, plan):
        if scan.group(1) not in FEW_ROWS and "Index Cond" not in plan[scan.end() :].split("->")[0]:
            return True
    return False


def assert_every_query_reads_an_index(ran: list[tuple[str, Any]], model: type[Model]) -> dict:
    found = plans(ran, model._meta.db_table)
    assert found, f"no query on {model._meta.db_table}"
    for sql, plan in found.items():
        assert not reads_whole(plan, model), f"{sql}\n reads the whole table: {plan}"
    return found


def one_job_in_every_state() -> None:
    for state in State.values:
        Job.objects.create(
            name="jobs.sync_crm_contact", queue="bulk", state=state, finished_at=timezone.now()
        )


def test_the_stats_read_indexes_not_the_table():
    one_job_in_every_state()
    with statements() as ran:
        operations.stats()
    assert_every_query_reads_an_index(ran, Job)
    # The open dead letters: counted from their own index, whatever was closed before.
    for sql, plan in plans(ran, DeadLetter._meta.db_table).items():
        assert "deadletter_open" in plan, f"{sql}\n reads every letter: {plan}"


def test_the_relay_sweeps_and_the_purge_read_indexes_not_the_table(
    monkeypatch: pytest.MonkeyPatch,
):
    one_job_in_every_state()
    # Every queue empty on the broker: the sweep for lost messages runs too.
    quiet: Callable[[], dict[str, int]] = lambda: dict.fromkeys(settings.QUEUES, 0)  # noqa: E731
    monkeypatch.setattr(broker, "queue_depths", quiet)
    with statements() as ran:
        relay.relay()
        retention.purge_old_records()
    found = assert_every_query_reads_an_index(ran, Job)
    lost = [sql for sql in found if '"jobs_job"."queue" IN' in sql]
    assert lost, "the sweep for messages lost did not run"
    # The due sweep looks up the due times of the scheduled jobs alone, not every scheduled
    # job (an order's review reminder is scheduled an hour ahead: a busy shop holds thousands).
    due = [plan for sql, plan in found.items() if "ORDER BY" in sql and '"eta" ASC' in sql]
    assert due, "no due sweep ran"
    for plan in due:
        assert re.search(r"eta ?<|Index Cond: .*eta <=", plan), f"the due sweep: {plan}"


@pytest.mark.parametrize("state", State.values)
def test_the_dashboard_lists_the_newest_jobs_of_a_state_from_an_index(client, state):
    one_job_in_every_state()
    client.force_login(get_user_model().objects.create_user("ops", is_staff=True))
    with statements() as ran:
        assert client.get("/ops/", {"state": state}).status_code == 200
    assert_every_query_reads_an_index(ran, Job)


def lists_newest_first(plan: str) -> bool:
    """Whether the plan reads the jobs in the list's order, newest first, instead of reading
    all that match and sorting them (for a common name or queue: the whole history)."""
    if connection.vendor == "sqlite":  # also "FOR RIGHT PART OF" and "FOR LAST TERM OF"
        return not re.search(r"USE TEMP B-TREE FOR .*ORDER BY", plan)
    return not re.search(r"\b(Incremental )?Sort\b", plan)


def seeks(plan: str, model: type[Model]) -> bool:
    """Whether the plan seeks the rows it wants in an index, rather than walking one (the
    newest first) and dropping those of another queue, name or state: a rare queue would be
    found only at the end of the history."""
    table = model._meta.db_table
    if connection.vendor == "sqlite":
        return not re.search(rf"\bSCAN {table}\b", plan)
    return bool(re.search(r"Index (?:Only )?Scan (?:Backward )?using \w+ on " + table, plan)) and (
        "Index Cond" in plan
    )


# What the admin's and the dashboard's lists of jobs can be narrowed by, as their query
# strings spell it (the admin's filters in the sidebar, the dashboard's form).
ADMIN_FILTERS = {
    "state": {"state__exact": State.DEAD},
    "queue": {"queue__exact": "crm"},
    "name": {"name__exact": "jobs.sync_crm_contact"},
}
DASHBOARD_FILTERS = {"queue": {"queue": "crm"}, "name": {"name": "jobs.sync_crm_contact"}}


@pytest.mark.parametrize("narrowed_by", ["nothing", *ADMIN_FILTERS])
def test_the_admin_job_list_reads_the_newest_jobs_in_order_and_counts_no_further_than_a_cap(
    admin_client, narrowed_by
):
    """At millions of rows a page of the admin must not read them all: not to offer its
    filters' choices (a DISTINCT over the table), nor to count the list or the whole ledger,
    nor to build a date hierarchy, nor to find the 100 newest of a queue or a name."""
    one_job_in_every_state()
    query = ADMIN_FILTERS.get(narrowed_by, {})
    with statements() as ran:
        page = admin_client.get("/admin/jobs/job/", query)
    assert page.status_code == 200
    for sql, plan in plans(ran, Job._meta.db_table).items():
        assert "DISTINCT" not in sql, f"a filter's choices read from the table: {sql}"
        if "COUNT(" in sql:
            assert " LIMIT " in sql, f"counts every job that matches: {sql}\n{plan}"
        assert lists_newest_first(plan), f"{sql}\n sorts what it read: {plan}"
        if query:
            assert seeks(plan, Job), f"{sql}\n walks the history to find them: {plan}"


@pytest.mark.parametrize("narrowed_by", DASHBOARD_FILTERS)
def test_the_dashboard_lists_the_newest_jobs_of_a_queue_or_name_from_an_index(
    admin_client, narrowed_by
):
    one_job_in_every_state()
    with statements() as ran:
        assert admin_client.get("/ops/", DASHBOARD_FILTERS[narrowed_by]).status_code == 200
    listed = {
        sql: plan
        for sql, plan in plans(ran, Job._meta.db_table).items()
        if "ORDER BY" in sql and "created_at" in sql.split("ORDER BY")[-1]
    }
    assert listed, "the dashboard listed no jobs"
    for sql, plan in listed.items():
        assert lists_newest_first(plan), f"{sql}\n sorts what it read: {plan}"
        assert seeks(plan, Job), f"{sql}\n walks the history to find them: {plan}"


def test_no_index_of_the_ledger_repeats_the_first_columns_of_another():
    """Every index is one more entry written by every job's INSERT: one whose columns begin
    another's serves no lookup the longer one does not (Django's own index on a foreign key,
    `concerning_type`, did, in front of job_concerning). Partial indexes are left out: they
    hold other rows."""
    partial = {index.name for index in Job._meta.indexes if index.condition is not None}
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, Job._meta.db_table)
    indexes = {
        name: tuple(index["columns"])
        for name, index in found.items()
        if index["index"] and not index["unique"] and not index["primary_key"]
    }
    repeats = [
        f"{short} {columns} begins {longer} {longer_columns}"
        for short, columns in indexes.items()
        for longer, longer_columns in indexes.items()
        if short != longer
        and short not in partial
        and longer not in partial
        and len(columns) < len(longer_columns)
        and longer_columns[: len(columns)] == columns
    ]
    assert not repeats


def test_the_jobs_of_a_subject_and_of_a_content_type_are_read_from_an_index():
    """What the foreign key's own index served before 0015: the deletion of a content type's
    jobs (its cascade) and a subject's timeline both seek in job_concerning."""
    from django.contrib.contenttypes.models import ContentType

    user = get_user_model().objects.create(username="subject@example.com")
    Job.objects.create(name="jobs.sync_crm_contact", queue="bulk", concerning=user)
    with statements() as ran:
        list(Job.objects.concerning(user))
        # As Django's cascade asks when a content type is deleted.
        list(Job.objects.filter(concerning_type__in=[ContentType.objects.get_for_model(user)]))
    found = assert_every_query_reads_an_index(ran, Job)
    assert all("job_concerning" in plan for plan in found.values()), found

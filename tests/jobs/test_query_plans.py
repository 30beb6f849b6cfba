"""What the ledger's readers cost does not grow with its history: every query that the stats,
the relay's sweeps and the purge make on jobs_job reads an index, never the whole table, as
the database plans it with its parameters bound (SQLite uses a partial index only when it can
see that the bound values fall inside it). The indexes hold as few rows as their readers need
(jobs.models.Job.Meta): the live jobs, the scheduled ones, the finished ones."""

import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
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


def partial_indexes(model: type[Model]) -> set[str]:
    """The model's indexes that hold only the rows their condition names."""
    return {index.name for index in model._meta.indexes if index.condition is not None}


def reads_whole(plan: str, model: type[Model]) -> bool:
    """Whether the plan reads every row of the table: itself, or an index of every row in
    full (reading all of a partial index, which holds only the few rows its condition names,
    is what such an index is for)."""
    table = model._meta.db_table
    if connection.vendor == "sqlite":
        for scan in re.finditer(rf"\bSCAN {table}\b(?: USING (?:COVERING )?INDEX (\w+))?", plan):
            if scan.group(1) not in partial_indexes(model):
                return True
        return False
    return bool(re.search(rf"Seq Scan on {table}\b", plan))


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
    quiet: Callable[[], dict[str, int]] = lambda: defaultdict(int)  # noqa: E731
    monkeypatch.setattr(broker, "queue_depths", quiet)
    with statements() as ran:
        relay.relay()
        retention.purge_old_records()
    found = assert_every_query_reads_an_index(ran, Job)
    # The due sweep looks up the due times of the scheduled jobs alone, not every scheduled
    # job (an order's review reminder is scheduled an hour ahead: a busy shop holds thousands).
    due = [plan for sql, plan in found.items() if "ORDER BY" in sql and '"eta" ASC' in sql]
    assert due, "no due sweep ran"
    for plan in due:
        assert re.search(r"eta ?<|Index Cond: .*eta <=", plan), f"the due sweep: {plan}"

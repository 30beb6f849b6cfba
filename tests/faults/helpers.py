"""What the fault tests do to the stack beyond starting it: run the app's code in a process
of its own that then dies on purpose, shut the database, and count what is left to do."""

import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.db import connection
from django.db.models import Count, Q, QuerySet

from jobs.models import DeadLetter, Job
from sandbox.models import AnalyticsEvent, Charge, CrmRecord
from shop.models import Order
from stack.processes import BIN, ROOT, Stack
from stack.sentinel import SentinelStack
from stack.waiting import wait_until


class FaultStack(Stack):
    def run_script(self, *args: str, check_exit: int | None = 0) -> subprocess.CompletedProcess:
        """Run one of tests/faults/scripts.py's steps in a process of its own, on the stack's
        database and broker."""
        done = subprocess.run(
            [str(BIN / "python"), "-m", "tests.faults.scripts", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check_exit is not None:
            assert done.returncode == check_exit, done.stdout + done.stderr
        return done


class SentinelFaultStack(SentinelStack, FaultStack):
    """A fault stack whose broker is a primary, a replica and three sentinels."""


@contextmanager
def database_outage() -> Iterator[None]:
    """Make the test database refuse the app's processes, then come back.

    SQLite: hold an exclusive lock (the app's processes wait SQLITE_TIMEOUT_SECONDS, which the
    stack should shorten, then get "database is locked"). PostgreSQL: forbid new connections
    and end the app's sessions. The test process keeps its own connection either way.
    """
    if connection.vendor == "sqlite":
        blocker = sqlite3.connect(connection.settings_dict["NAME"], timeout=10)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            blocker.rollback()
            blocker.close()
        return
    import psycopg

    db = connection.settings_dict
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (own_pid,) = cursor.fetchone()
    # A database cannot close itself to connections: do it from the maintenance database.
    admin = psycopg.connect(
        dbname="postgres",
        user=db["USER"],
        password=db["PASSWORD"] or None,
        host=db["HOST"],
        port=db["PORT"] or 5432,
        autocommit=True,
    )
    with admin:
        admin.execute(f'ALTER DATABASE "{db["NAME"]}" WITH ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> %s",
            [db["NAME"], own_pid],
        )
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{db["NAME"]}" WITH ALLOW_CONNECTIONS true')


def unfinished_jobs() -> QuerySet[Job]:
    """The jobs not ended yet, but for those due later (the delayed review reminders wait, as
    they should)."""
    return Job.objects.exclude(state__in=[*Job.FINAL_STATES, Job.State.SCHEDULED])


def every_job_final() -> bool:
    return not unfinished_jobs().exists()


def open_jobs() -> str:
    """The unfinished jobs counted by job and state, for a failure message:
    "12 jobs.sync_crm_deal queued (3 published, 0 stalled), ..."."""
    rows = (
        unfinished_jobs()
        .values("name", "state")
        .annotate(
            total=Count("id"),
            published=Count("id", filter=Q(published_at__isnull=False)),
            stalled=Count("id", filter=~Q(stalled_reason="")),
        )
        .order_by("-total")
    )
    return ", ".join(
        f"{r['total']} {r['name']} {r['state']} "
        f"({r['published']} published, {r['stalled']} stalled)"
        for r in rows
    )


def sqlite_lock_holders() -> str:
    """Which processes hold a write lock on the test database's files now, from /proc/locks
    (SQLite's locks are POSIX locks: the database file's, and the WAL index's, where byte 120
    is the write lock), with their command lines: for a failure message."""
    if connection.vendor != "sqlite":
        return "(not SQLite)"
    name = str(connection.settings_dict["NAME"])
    inodes = {}
    for suffix in ("", "-shm", "-wal"):
        try:
            inodes[os.stat(name + suffix).st_ino] = name.rsplit("/", 1)[-1] + suffix
        except OSError:
            continue
    held = []
    with open("/proc/locks") as locks:
        for line in locks:
            fields = line.split()
            if "WRITE" not in fields or len(fields) < 8:
                continue
            pid, inode = fields[-4], int(fields[-3].rsplit(":", 1)[-1])
            if inode not in inodes:
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    command = cmdline.read().replace(b"\0", b" ").decode()[:120]
            except OSError:
                command = "(gone)"
            held.append(f"pid {pid} {inodes[inode]} bytes {fields[-2]}-{fields[-1]}: {command}")
    return "; ".join(held) or "none"


def wait_or_fail(
    predicate: Callable[[], object],
    *,
    timeout: float = 30,
    message: str,
    explain: Callable[[], str],
) -> None:
    """wait_until; on timeout, fail the test with `explain()`, what was still missing, read then."""
    try:
        wait_until(predicate, timeout=timeout, message=message)
    except TimeoutError as timed_out:
        pytest.fail(f"{timed_out}; {explain()}")


def wait_for_every_job_final(*, timeout: float = 30, message: str) -> None:
    """Wait until every job ended; on timeout, fail naming `message` and the jobs still open."""
    wait_or_fail(
        every_job_final,
        timeout=timeout,
        message=message,
        explain=lambda: f"still open: {open_jobs()}",
    )


def assert_orders_done_once(app: Stack, order_ids: list[int]) -> None:
    """Every order paid, and each of its effects at the third parties once: the charge, the
    confirmation email, the analytics event, the CRM deal; and no dead letter."""
    subjects = [m.subject for m in app.emails()]
    for order_id in order_ids:
        assert Order.objects.get(pk=order_id).status == "paid"
        assert Charge.objects.filter(reference=f"order-{order_id}").count() == 1
        assert subjects.count(f"Order #{order_id} is paid") == 1
        assert AnalyticsEvent.objects.filter(event_id=f"order_placed:{order_id}").count() == 1
        assert CrmRecord.objects.filter(kind="deal", external_key=f"order-{order_id}").count() == 1
    assert not DeadLetter.objects.exists()

"""Database connections in workers: kept from one job to the next, as in web requests.

Celery's Django fixup opens a new connection for every job unless CELERY_DB_REUSE_MAX is set
(celery/celery#4116, and #9824 for why it went back to closing). A new connection per job is
a SQLite open with its PRAGMAs, or a PostgreSQL backend forked for every job: it costs more
than the job's own ledger writes. Instead, around each job, do what Django does around each
request (`close_old_connections`: drop connections older than CONN_MAX_AGE, health-check the
rest before reuse), and drop the connections of a run that ended abnormally, whose
connection an interrupted query (a soft time limit) may have left in an unusable state.

A worker's main process also writes to the database from threads of its own (its heartbeat;
the hand-back when it stops), and a prefork worker's main process forks a pool process from its
main thread whenever one ends (a hard time limit, a crash, max-tasks-per-child). SQLite keeps
a process's locks in the process's memory as well as in its files: a child forked while another
thread of its parent was inside a write transaction inherits that lock as held, by a connection
the child does not have, and gets "database is locked" for every write, for good (the
database-outage fault test's pool process, forked after a hard time limit, did). So that work
runs in `no_fork_meanwhile`, and the main process's forks wait for it to end.
"""

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import states
from celery.signals import task_postrun, task_prerun, worker_init
from django.conf import settings
from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)

ENDED_CLEANLY = frozenset({states.SUCCESS, states.RETRY, states.IGNORED})


def _in_process(task: Any) -> bool:
    # A job run in the caller's own process (jobs.dispatch.run_here) shares the caller's
    # connections, which are the caller's to manage (as Celery's fixup does for eager runs).
    return bool(getattr(task.request, "is_eager", False))


@task_prerun.connect
def _before_job(task: Any = None, **kwargs: Any) -> None:
    if not _in_process(task):
        close_old_connections()


@task_postrun.connect
def _after_job(task: Any = None, state: str | None = None, **kwargs: Any) -> None:
    if _in_process(task):
        return
    if state in ENDED_CLEANLY:
        close_old_connections()
    else:
        connections.close_all()


# Held by a thread's database work in a worker's main process, and by that process's forks.
_no_fork = threading.Lock()
_forks_wait = False
_this_fork = threading.local()  # whether the forking thread got the lock (each its own)


def _fork_wait_seconds() -> float:
    """Twice the longest that SQLite makes a statement wait for its write lock
    (SQLITE_TIMEOUT_SECONDS, 20 s by default): a beat waits once, at its BEGIN. Past it the
    fork goes ahead, as it would without the wait, and says so: the forking thread is the
    worker's event loop, which takes no message and enforces no time limit meanwhile."""
    waits = [
        float(database.get("OPTIONS", {}).get("timeout", 5))
        for database in settings.DATABASES.values()
        if database["ENGINE"] == "django.db.backends.sqlite3"
    ]
    return 2 * max(waits, default=0)


@contextmanager
def no_fork_meanwhile() -> Iterator[None]:
    """Database work in a thread other than the one that forks (see above): no fork while it
    runs, and the thread's connections closed before one can happen. Not nested: the lock is
    not reentrant."""
    with _no_fork:
        try:
            yield
        finally:
            connections.close_all()


def _before_fork() -> None:
    wait = _fork_wait_seconds()
    _this_fork.held = _no_fork.acquire(timeout=wait)
    if not _this_fork.held:
        logger.warning(
            "forking after waiting %.0f s for a thread's database work: the new process may "
            "find the database locked",
            wait,
        )


def _after_fork_in_parent() -> None:
    if _this_fork.held:
        _no_fork.release()


def _after_fork_in_child() -> None:
    # The child's only thread is the one that forked: a lock of its own, free, whoever held
    # the parent's.
    global _no_fork
    _no_fork = threading.Lock()


@worker_init.connect
def _make_forks_wait_for_database_work(**kwargs: Any) -> None:
    """Once per process, and on SQLite only (a PostgreSQL connection holds no lock in the
    process's memory): every os.fork() of the process, billiard's for a pool process among
    them, waits for the work above."""
    global _forks_wait
    if _forks_wait or not _fork_wait_seconds():
        return  # registered twice, a fork would wait for itself
    _forks_wait = True
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )

"""Database connections in workers: kept from one job to the next, as in web requests.

Celery's Django fixup opens a new connection for every job unless CELERY_DB_REUSE_MAX is set
(celery/celery#4116, and #9824 for why it went back to closing). A new connection per job is
a SQLite open with its PRAGMAs, or a PostgreSQL backend forked for every job: it costs more
than the job's own ledger writes. Instead, around each job, do what Django does around each
request (`close_old_connections`: drop connections older than CONN_MAX_AGE, health-check the
rest before reuse), and drop the connections of a run that ended abnormally, whose
connection an interrupted query (a soft time limit) may have left in an unusable state.
"""

from typing import Any

from celery import states
from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections, connections

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

"""Heartbeats: the leases of running jobs, and the workers that are alive.

Every worker process that runs jobs (a thread-pool worker, each child of a prefork pool) keeps
the runs it holds here, and a thread of its own renews their leases every
JOBS_HEARTBEAT_SECONDS for another JOBS_LEASE_SECONDS. A lease therefore runs out within
JOBS_LEASE_SECONDS of the process dying, however long the job, and the relay gives the job to
another worker (jobs.relay): a killed worker's jobs are taken up again in seconds, not after
the hard time limit. A run that outlives the hard time limit is no longer renewed, so a job
hung in a thread (which no time limit can stop) loses its lease too.

Each worker's main process also writes its WorkerHeartbeat row every JOBS_HEARTBEAT_SECONDS:
"workers online" is read from the database, never by asking the workers through the broker.
"""

import logging
import os
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections
from django.db.models import Q

from jobs.clock import DbNow
from jobs.connections import no_fork_meanwhile
from jobs.models import Job, WorkerHeartbeat

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hold:
    attempt: int
    holder: str  # "node:pid" (Job.lease_holder)
    started: float  # time.monotonic() when the run began


_holds: dict[str, Hold] = {}
_lock = threading.Lock()
_renewer: threading.Thread | None = None


def holder_name(node: str) -> str:
    """How this process names itself in Job.lease_holder."""
    return f"{node}:{os.getpid()}"


def hold(job_id: str, *, attempt: int, node: str) -> None:
    """This process runs the job now: keep its lease renewed until `release`."""
    with _lock:
        _holds[job_id] = Hold(attempt, holder_name(node), time.monotonic())
    _ensure_renewer()


def release(job_id: str) -> None:
    with _lock:
        _holds.pop(job_id, None)


def held() -> dict[str, Hold]:
    with _lock:
        return dict(_holds)


def renew() -> int:
    """Renew the leases of this process's runs; how many were renewed. Fenced by attempt and
    holder: a run that another has taken over keeps nothing. Until when is the database's
    clock's (jobs.clock), never this host's."""
    fresh = time.monotonic() - settings.CELERY_TASK_TIME_LIMIT
    runs = [(job_id, h) for job_id, h in held().items() if h.started > fresh]
    if not runs:
        return 0
    mine = Q()
    for job_id, h in runs:
        mine |= Q(pk=job_id, attempts=h.attempt, lease_holder=h.holder)
    until = DbNow(settings.JOBS_LEASE_SECONDS)
    return Job.objects.filter(mine, state=Job.State.RUNNING).update(lease_until=until)


def _ensure_renewer() -> None:
    """A renewing thread in this process while it holds runs: started by a run when none is
    running (the first run, the first after an idle spell, the first after a fork)."""
    global _renewer
    with _lock:
        if _renewer is not None and _renewer.is_alive():
            return
        _renewer = threading.Thread(target=_renew_while_held, name="lease-renewer", daemon=True)
        _renewer.start()


def _renew_while_held() -> None:
    """Renew every JOBS_HEARTBEAT_SECONDS until the process holds no run, then end and close
    the thread's connection. Not at once: a run's claim has just given it a whole lease."""
    global _renewer
    while True:
        time.sleep(settings.JOBS_HEARTBEAT_SECONDS)
        with _lock:
            if not _holds:
                # Decided under the lock `hold` takes: a run held after this starts another.
                _renewer = None
                break
        _beat(renew)
    connections.close_all()


def _beat(beat: Any, *, hold_connection: bool = True) -> None:
    """Call beat() once; log, never raise, what goes wrong: the thread that calls it must
    live. Without `hold_connection` (a worker's main process, which forks its pool processes),
    no fork while it runs, and the thread's connection closed afterwards (jobs.connections)."""
    try:
        if hold_connection:
            try:
                beat()
            finally:
                close_old_connections()
        else:
            with no_fork_meanwhile():
                beat()
    except DatabaseError as exc:
        # The leases run out if the database stays away: other workers take the jobs over,
        # and these runs' later writes are fenced out.
        logger.warning("heartbeat not written: %s", exc)
    except Exception:
        # A bug, but a dead renewer would let every lease of this process run out while its
        # jobs still run.
        logger.exception("heartbeat failed")


def _every_heartbeat(beat: Any, stop: threading.Event) -> None:
    """Call beat() now and then every JOBS_HEARTBEAT_SECONDS, until `stop`, closing the
    thread's connection after each (see `_start_worker_heartbeat`)."""
    while True:
        _beat(beat, hold_connection=False)
        if stop.wait(settings.JOBS_HEARTBEAT_SECONDS):
            return


# --- workers ---------------------------------------------------------------------------------


def beat_worker(hostname: str, *, queues: str = "") -> None:
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname,
        defaults={"pid": os.getpid(), "queues": queues, "seen_at": DbNow()},
    )


def workers_online() -> int:
    """Workers whose main process wrote its heartbeat lately."""
    recent = DbNow(-3 * settings.JOBS_HEARTBEAT_SECONDS)
    return WorkerHeartbeat.objects.filter(seen_at__gte=recent).count()


_worker_beats: dict[str, threading.Event] = {}


@worker_ready.connect
def _start_worker_heartbeat(sender: Any = None, **kwargs: Any) -> None:
    hostname = sender.hostname
    queues = ",".join(sorted(sender.app.amqp.queues.consume_from))

    def beat() -> None:
        beat_worker(hostname, queues=queues)

    # No fork during a beat, and its connection closed after each: the main process of a
    # prefork worker forks a new pool process whenever one ends (jobs.connections).
    stop = _worker_beats[hostname] = threading.Event()
    threading.Thread(
        target=_every_heartbeat,
        args=(beat, stop),
        name="worker-heartbeat",
        daemon=True,
    ).start()


@worker_shutdown.connect
def _stop_worker_heartbeat(sender: Any = None, **kwargs: Any) -> None:
    stop = _worker_beats.pop(sender.hostname, None)
    if stop is not None:
        stop.set()
    with suppress(DatabaseError):  # if not, it goes stale by itself
        WorkerHeartbeat.objects.filter(hostname=sender.hostname, pid=os.getpid()).delete()

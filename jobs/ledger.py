"""State changes of ledger rows as workers run jobs.

Redis delivers at least once: a message can arrive twice (a redelivery after a worker died,
after the visibility timeout, a relay that published again, an operator's requeue). The
ledger turns that into "at most one run at a time, and never again once finished":

- A run *claims* its job with one conditional UPDATE and holds it for a lease, which its
  process renews while it lives (jobs.heartbeat). A message is the job's current one if it
  carries the job's epoch (raised by each requeue) and, for a retry, a higher Celery retry
  count than the run that scheduled it. Anything else is STALE and dropped.
- A second delivery of the current message while the lease holds is BUSY: it is dropped (it
  never runs beside the first). If that run dies, its lease runs out and the relay publishes
  the job again (jobs.relay).
- A delivery after the lease ended means the run that held it died: a *lost run*; the job runs
  again, and after JOBS_MAX_LOST_RUNS lost runs it is given up as dead instead of looping.
- A run that a stopping worker hands back (jobs.shutdown) is not lost: its job is `queued`
  again, and the next delivery takes it as a first run would.
- A job of a paused queue is not taken (PAUSED): its message goes back to the queue and waits
  for the resume (jobs.pauses). A cancelled job is finished: its message is dropped.
- Each claim gets the job's new attempt number, and every later change of that run is fenced
  by it: a late hook of a run that was taken over cannot overwrite its successor's state.
"""

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce

from jobs import clock
from jobs.clock import DbNow
from jobs.models import Job, OperatorAction, PausedQueue

logger = logging.getLogger(__name__)
State = Job.State
EPOCH_HEADER = "job_epoch"


class Outcome(enum.Enum):
    RUN = "run"
    FINISHED = "finished"  # succeeded or dead already: nothing to do
    STALE = "stale"  # not the job's current message (or the job is gone)
    BUSY = "busy"  # another run holds the lease now
    GAVE_UP = "gave_up"  # too many lost runs: now dead
    PAUSED = "paused"  # its queue is paused: put the message back, to wait for the resume


@dataclass(frozen=True)
class Claim:
    outcome: Outcome
    attempt: int = 0  # with RUN: this run's number, the fence for its later changes
    # With RUN, read by the claim's own query: when the job was due (recorded, or its eta)
    # for the pickup latency of a first run, and what it concerns, for who watches it finish.
    due_at: datetime | None = None
    concerning_type_id: int | None = None
    concerning_id: str = ""
    # With RUN: when it started, by the database's clock (jobs.clock), as due_at is.
    started_at: datetime | None = None


def claim(
    job_id: str,
    *,
    retries: int,
    epoch: int,
    holder: str,
    lease_seconds: float,
    max_lost_runs: int,
    on_give_up: Callable[[Job], None] = lambda job: None,
) -> Claim:
    """Try to take the job for a run of the message with this retry count and epoch.

    `on_give_up(job)` runs in the transaction that gives the job up, so that what it records
    (the dead letter) commits with it or not at all.

    Every time here is the database's (jobs.clock): a worker whose host clock runs ahead does
    not take a live run's lease for run out, nor one whose clock is behind a dead one's for
    held.
    """
    taken = _take_if_current(
        job_id, retries=retries, epoch=epoch, holder=holder, lease_seconds=lease_seconds
    )
    if taken is not None:
        return taken

    job = (
        Job.objects.filter(pk=job_id)
        .only(
            "state",
            "retries",
            "epoch",
            "attempts",
            "lease_until",
            "lost_runs",
            "created_at",
            "eta",
            "concerning_type_id",
            "concerning_id",
            "queue",
        )
        .annotate(db_now=DbNow())  # the database's clock, read with the row
        .first()
    )
    if job is None or job.epoch != epoch:
        return Claim(Outcome.STALE)
    now: datetime = job.db_now  # type: ignore[attr-defined]  # annotated above
    if job.state in Job.FINAL_STATES:  # succeeded, dead, or cancelled by an operator
        return Claim(Outcome.FINISHED)
    # What this message would run (as the UPDATE's condition says, or a dead run's job)...
    would_run = (
        job.state == State.QUEUED
        or (job.state in (State.RETRYING, State.RUNNING) and job.retries < retries)
        or (
            job.state == State.RUNNING
            and job.retries == retries
            and not (job.lease_until and job.lease_until > now)
        )
    )
    # ...waits while its queue is paused, whichever worker took the message.
    if would_run and PausedQueue.objects.filter(queue=job.queue).exists():
        return Claim(Outcome.PAUSED)
    if job.state != State.RUNNING or job.retries != retries:
        return Claim(Outcome.STALE)
    if job.lease_until and job.lease_until > now:
        return Claim(Outcome.BUSY)

    # The lease ran out and the job is still running: the run that held it died.
    # Its lease still run out when the update runs, by the database's clock.
    held_by_the_dead = Job.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lte=DbNow()),
        pk=job_id,
        state=State.RUNNING,
        epoch=epoch,
        attempts=job.attempts,
    )
    lost_runs = job.lost_runs + 1
    if lost_runs >= max_lost_runs:
        with transaction.atomic():
            gave_up = held_by_the_dead.update(
                state=State.DEAD,
                lost_runs=lost_runs,
                finished_at=DbNow(),
                lease_until=None,
                last_error=f"WorkerLost: the worker running this job died {lost_runs} times",
                first_failed_at=Coalesce("first_failed_at", DbNow()),
            )
            if gave_up:
                on_give_up(Job.objects.get(pk=job_id))
        return Claim(Outcome.GAVE_UP if gave_up else Outcome.STALE)
    run = {
        "state": State.RUNNING,
        "attempts": F("attempts") + 1,
        "retries": retries,
        "started_at": DbNow(),
        "lease_until": DbNow(lease_seconds),
        "lease_holder": holder,
        "next_attempt_at": None,
        "stalled_reason": "",
    }
    if held_by_the_dead.update(**run, lost_runs=lost_runs):
        return Claim(
            Outcome.RUN,
            attempt=job.attempts + 1,
            due_at=job.eta or job.created_at,
            concerning_type_id=job.concerning_type_id,
            concerning_id=job.concerning_id,
            started_at=now,
        )
    return Claim(Outcome.STALE)  # another delivery took it over first


def _take_if_current(
    job_id: str, *, retries: int, epoch: int, holder: str, lease_seconds: float
) -> Claim | None:
    """Take the job if this message is its current one: the claim of a run, or None.

    The current message is the first run's, or the retry that the previous run scheduled (a
    higher count). A running row with a lower count is a run that sent its retry but could
    not record it (the database was away); any other run of it is fenced by its attempt
    number.

    Plain SQL for RETURNING, which the ORM's update() lacks (SQLite 3.35+ and PostgreSQL
    have it): every job starts with this claim, and reading the attempt number back in a
    second query cost as much again (bench/, "Job machinery"). What the metrics and the
    job's watchers need of the row comes back with it, for the same reason. The start and the
    lease are the database's clock, in the statement itself (jobs.clock).
    """
    ops = connection.ops
    started_sql, started_params = clock.sql()
    until_sql, until_params = clock.sql(lease_seconds)
    jobs, paused = ops.quote_name(Job._meta.db_table), ops.quote_name(PausedQueue._meta.db_table)
    row, _ = _run_every_job(
        f"UPDATE {jobs}"  # noqa: S608 - names, not input
        " SET state = %s, attempts = attempts + 1, retries = %s,"
        f" started_at = {started_sql}, lease_until = {until_sql}, lease_holder = %s,"
        " next_attempt_at = NULL, stalled_reason = ''"
        " WHERE id = %s AND epoch = %s"
        " AND (state = %s OR (state IN (%s, %s) AND retries < %s))"
        # Not while its queue is paused (a unique index: one lookup in a table of a few rows).
        f" AND NOT EXISTS (SELECT 1 FROM {paused} WHERE {paused}.queue = {jobs}.queue)"
        " RETURNING attempts, created_at, eta, concerning_type_id, concerning_id, started_at",
        [
            State.RUNNING,
            retries,
            *started_params,
            *until_params,
            holder,
            Job._meta.pk.get_db_prep_value(job_id, connection),
            epoch,
            State.QUEUED,
            State.RETRYING,
            State.RUNNING,
            retries,
        ],
    )
    if row is None:
        return None
    attempt, created_at, eta, concerning_type_id, concerning_id, started_at = row
    return Claim(
        Outcome.RUN,
        attempt=attempt,
        due_at=clock.from_db(eta) or clock.from_db(created_at),
        concerning_type_id=concerning_type_id,
        concerning_id=concerning_id or "",
        started_at=clock.from_db(started_at),
    )


def _held(job_id: str, attempt: int) -> QuerySet[Job]:
    return Job.objects.filter(pk=job_id, state=State.RUNNING, attempts=attempt)


def mark_succeeded(job_id: str, *, attempt: int) -> bool:
    """Record the run's success; also when its stopping worker handed the job back a moment
    before it finished (then the message put back finds the job done)."""
    return mark_ended(job_id, attempt=attempt, state=State.SUCCEEDED, reason="")


def mark_ended(job_id: str, *, attempt: int, state: str, reason: str) -> bool:
    """Record that the run ended its job: `succeeded`, or `skipped`, `declined` or (asked by an
    operator) `cancelled` (jobs.errors.Ended), with why; also when its stopping worker had just
    handed the job back. False if this run no longer holds the job.

    Plain SQL, as the claim: every job ends here, and building this UPDATE with the ORM (its
    two alternative conditions as Q objects) cost the worker's CPU more than the claim and
    the database's work together, about 0.5 ms a job (bench/, "Job machinery")."""
    finished_sql, finished_params = clock.sql()
    _, ended = _run_every_job(
        f"UPDATE {connection.ops.quote_name(Job._meta.db_table)}"  # noqa: S608 - names
        " SET state = %s, outcome_reason = %s,"
        f" finished_at = {finished_sql}, last_error = '', lease_until = NULL,"
        " lease_holder = '', stalled_reason = ''"
        " WHERE id = %s AND attempts = %s"
        # Its run holds it, or handed it back a moment ago and nothing claimed it since.
        " AND (state = %s OR (state = %s AND stalled_reason = %s))",
        [
            state,
            reason,
            *finished_params,
            Job._meta.pk.get_db_prep_value(job_id, connection),
            attempt,
            State.RUNNING,
            State.QUEUED,
            Job.Stall.HANDED_BACK,
        ],
    )
    return ended > 0


def _run_every_job(sql: str, params: list[Any]) -> tuple[tuple[Any, ...] | None, int]:
    """Run one of the two statements that every job runs, its claim and its finish: the
    first row it returns (or None) and the rows it changed.

    On PostgreSQL, as a prepared statement: planning them again for every job was half of the
    server's work on them (docs/performance.md, "What limits the machinery"). Django's
    cursors bind parameters on the client, which cannot be prepared, so this is a psycopg
    cursor that binds on the server, on Django's own connection (so in the caller's
    transaction, after Django's health check), with Django's exceptions. Whether psycopg
    prepares it is the connection's `prepare_threshold` (config/settings.py,
    DATABASE_PREPARED_STATEMENTS): None behind a pooler that does not keep them.
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return (cursor.fetchone() if cursor.description else None), cursor.rowcount
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        try:
            cursor.execute(sql, params, prepare=True)
        except psycopg.errors.InvalidSqlStatementName:
            # The server session no longer has what psycopg prepared on it: a transaction
            # pooler that does not keep prepared statements moved this connection to
            # another. Prepare nothing more on it, and run the statement as it is (only
            # outside a transaction: an error inside one has aborted it).
            logger.error(
                "A prepared statement was gone from the database session (a connection "
                "pooler that does not keep them?): set DATABASE_PREPARED_STATEMENTS=false."
            )
            connection.connection.prepare_threshold = None
            if connection.in_atomic_block:
                raise
            cursor.execute(sql, params)
        return (cursor.fetchone() if cursor.description else None), cursor.rowcount


class Progress(enum.Enum):
    RECORDED = "recorded"
    NOT_HELD = "not_held"  # this run no longer holds the job: it must stop, and write nothing
    CANCEL_REQUESTED = "cancel_requested"  # an operator asked the job to stop (Job.stopping)


def report_progress(job_id: str, *, attempt: int, done: int, total: int) -> Progress:
    """Record how far the run has come, fenced by its attempt, unless an operator has asked
    the job to stop (then nothing is recorded: the run ends the job `cancelled`)."""
    held = _held(job_id, attempt)
    if held.filter(cancel_requested_at__isnull=True).update(
        progress_done=done, progress_total=total
    ):
        return Progress.RECORDED
    # The rare path: one more query to say why nothing was recorded.
    if held.filter(cancel_requested_at__isnull=False).exists():
        return Progress.CANCEL_REQUESTED
    return Progress.NOT_HELD


def cancel_reason(job_id: str) -> str:
    """The reason of the operator's latest cancel of the job (the audit keeps it)."""
    reason = (
        OperatorAction.objects.filter(job_id=job_id, action=OperatorAction.Action.CANCEL)
        .order_by("-at", "-pk")
        .values_list("reason", flat=True)
        .first()
    )
    return reason or "cancelled by an operator"


def mark_retrying(
    job_id: str, *, attempt: int, error: str, next_attempt_at: datetime | DbNow | None
) -> bool:
    """Record a retry, due at `next_attempt_at`: the relay publishes it then (jobs.relay), so
    no worker holds a countdown that a crash or a broker restart would lose. False if this run
    no longer holds the job."""
    return bool(
        _held(job_id, attempt).update(
            state=State.RETRYING,
            last_error=error,
            next_attempt_at=next_attempt_at,
            lease_until=None,
            lease_holder="",
            first_failed_at=Coalesce("first_failed_at", DbNow()),
        )
    )


def mark_dead(job_id: str, *, attempt: int, error: str) -> Job | None:
    """Move a failed job to DEAD; returns it, or None if this run no longer held it."""
    moved = _held(job_id, attempt).update(
        state=State.DEAD,
        last_error=error,
        finished_at=DbNow(),
        next_attempt_at=None,
        lease_until=None,
        lease_holder="",
        first_failed_at=Coalesce("first_failed_at", DbNow()),
    )
    return Job.objects.get(pk=job_id) if moved else None


_HANDED_BACK = {
    "state": State.QUEUED,
    "lease_until": None,
    "lease_holder": "",
    "stalled_reason": Job.Stall.HANDED_BACK,
}


def hand_back(job_id: str, *, attempt: int) -> bool:
    """This run stops unfinished (its worker is stopping): the job is queued again, for any
    worker to take as it would a first run; not a lost run. False if the run held nothing."""
    return bool(_held(job_id, attempt).update(**_HANDED_BACK, published_at=DbNow()))


def hand_back_held_by(*, node: str) -> int:
    """Hand back every job that the processes of worker `node` hold; how many."""
    held_here = Job.objects.filter(state=State.RUNNING, lease_holder__startswith=f"{node}:")
    return held_here.update(**_HANDED_BACK, published_at=DbNow())

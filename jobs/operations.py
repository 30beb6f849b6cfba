"""What operators see and do: queue depth and lag, throughput, dead letters and their fate;
pausing and resuming a queue, cancelling a job that has not run (or asking a long job that
says it can stop to stop), requeueing or discarding dead
letters one at a time or all that match a filter. Every action is audited (OperatorAction).

Figures come from the broker (how many messages wait) and the ledger (how long the oldest has
waited, what finished), so they agree with what the order pages and the API show.
"""

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import Count, F, Min, QuerySet, Sum
from django.utils import timezone

from jobs import broker, health, pauses, signals
from jobs.base import HOUSEKEEPING_JOBS
from jobs.clock import DbNow, db_now
from jobs.dispatch import cancellable_while_running, ledger_job_names, publisher
from jobs.models import (
    LIVE_STATES,
    DeadLetter,
    Job,
    JobCount,
    OperatorAction,
    PausedQueue,
    state_is,
)

State = Job.State
# The states a run ends a job in (a cancel is an operator's, or the business's, not a run's):
# what "finished in the last minute" counts. A skip and a decline are runs that ended well.
RUN_ENDED_STATES = (State.SUCCEEDED, State.SKIPPED, State.DECLINED, State.DEAD)


@dataclass(frozen=True)
class QueueStats:
    queue: str
    depth: int | None  # None: the broker did not answer
    oldest_age_s: float | None  # None: nothing waiting
    paused: bool = False  # workers take none of its messages (PausedQueue)
    paused_at: datetime | None = None
    pause_reason: str = ""


@dataclass(frozen=True)
class Stats:
    queues: list[QueueStats]
    jobs: dict[str, int]
    dead_letters_open: int
    finished_last_minute: int
    failed_last_minute: int
    workers: int
    # Jobs waiting to be taken up again, by why (Job.Stall): a worker that stopped, a lost
    # message, a worker stopped for a deploy.
    stalled: dict[str, int]


def stats() -> Stats:
    now = db_now()  # ages and "the last minute" by the clock the ledger's times are written by
    depths = broker.queue_depths()
    # Lag: how long the oldest job published to each queue has waited without starting.
    oldest = dict(
        Job.objects.filter(state=State.QUEUED, published_at__isnull=False)
        .values_list("queue")
        .annotate(oldest=Min("published_at"))
    )
    paused = {p.queue: p for p in PausedQueue.objects.all()}
    queues = [
        QueueStats(
            queue=queue,
            depth=depths[queue],
            oldest_age_s=_age(now, oldest.get(queue)),
            paused=queue in paused,
            paused_at=paused[queue].paused_at if queue in paused else None,
            pause_reason=paused[queue].reason if queue in paused else "",
        )
        for queue in settings.QUEUES
    ]
    recent = dict(
        # A range scan of the (state, finished_at) index per state, as long as the last minute's.
        Job.objects.filter(state__in=RUN_ENDED_STATES, finished_at__gte=now - timedelta(minutes=1))
        .values_list("state")
        .annotate(n=Count("*"))
    )
    return Stats(
        queues=queues,
        jobs=job_counts(),
        dead_letters_open=DeadLetter.objects.filter(status=DeadLetter.Status.OPEN).count(),
        finished_last_minute=sum(recent.values()),
        failed_last_minute=recent.get(State.DEAD, 0),
        workers=health.workers_online(),
        stalled=stalled_jobs(now),
    )


def job_counts() -> dict[str, int]:
    """Jobs in the ledger by state, at a cost that does not grow with the ledger: the final
    states from the counts the database keeps (JobCount), the live ones through the index on
    state (their rows are few: a backlog, not the history)."""
    finished = JobCount.objects.values_list("state").annotate(total=Sum("n"))
    # state_is, not state__in: so that SQLite reads the live jobs' index (Job.Meta).
    live = Job.objects.filter(state_is(*LIVE_STATES)).values_list("state").annotate(n=Count("*"))
    counts = {**dict(finished), **dict(live)}
    # int(): PostgreSQL sums a bigint column as numeric; the API and the gauges want integers.
    return {state: int(counts.get(state, 0)) for state in State.values}


def stalled_jobs(now: datetime) -> dict[str, int]:
    """How many jobs wait to be taken up again, by reason (both counts read indexes only)."""
    found = dict(
        Job.objects.exclude(stalled_reason="")
        .filter(state__in=[State.QUEUED, State.RETRYING])
        .values_list("stalled_reason")
        .annotate(n=Count("pk"))
    )
    # Not found by the relay yet: runs whose lease ran out (their process stopped renewing it).
    lapsed = Job.objects.filter(state=State.RUNNING, lease_until__lt=now).count()
    found[Job.Stall.WORKER_LOST] = found.get(Job.Stall.WORKER_LOST, 0) + lapsed
    return {reason: found.get(reason, 0) for reason in Job.Stall.values}


def _age(now: datetime, moment: datetime | None) -> float | None:
    # Not below zero: a publisher may stamp a row a moment after `now` was read.
    return max(0.0, round((now - moment).total_seconds(), 3)) if moment else None


class NotOpen(Exception):
    """The dead letter was requeued or discarded already."""


class Conflict(Exception):
    """The action does not apply to the thing as it is now; the message says why."""


class UnknownQueue(LookupError):
    pass


class ReasonRequired(ValueError):
    pass


def operator(user: AbstractBaseUser | AnonymousUser) -> AbstractBaseUser:
    """The staff member acting, whom the views' staff-only checks let through; anyone else is
    refused here too, for the audit names who acted."""
    if isinstance(user, AnonymousUser) or not getattr(user, "is_staff", False):
        raise PermissionDenied
    return user


def _required(reason: str, what: str) -> str:
    if not reason.strip():
        raise ReasonRequired(f"A reason is required to {what}, for the audit.")
    return reason.strip()


def _audit(action: str, *, by: AbstractBaseUser, reason: str, **what: object) -> None:
    job = what.get("job")
    if isinstance(job, Job):
        what.setdefault("job_name", job.name)
        what.setdefault("queue", job.queue)
    OperatorAction.objects.create(action=action, by_id=by.pk, reason=reason, **what)


# --- queues ----------------------------------------------------------------------------------


def pause(queue: str, *, by: AbstractBaseUser, reason: str) -> PausedQueue:
    """Workers stop taking the queue's messages (jobs.pauses) until it is resumed; they wait
    on the broker, and the relay and beat keep publishing into it. Survives worker restarts:
    the row is what every worker reads."""
    if queue not in settings.QUEUES:
        raise UnknownQueue(f"There is no queue {queue!r}.")
    reason = _required(reason, "pause a queue")
    with transaction.atomic():
        paused, created = PausedQueue.objects.get_or_create(
            queue=queue, defaults={"paused_by_id": by.pk, "reason": reason}
        )
        if not created:
            raise Conflict(
                f"Queue {queue} is paused already, since {paused.paused_at:%Y-%m-%d %H:%M:%S} "
                f"UTC by {paused.paused_by}: {paused.reason}"
            )
        _audit(OperatorAction.Action.PAUSE, by=by, reason=reason, queue=queue)
        transaction.on_commit(pauses.tell_workers, robust=True)
    return paused


def resume(queue: str, *, by: AbstractBaseUser, reason: str = "") -> None:
    """Workers take the queue's messages again."""
    if queue not in settings.QUEUES:
        raise UnknownQueue(f"There is no queue {queue!r}.")
    with transaction.atomic():
        if not PausedQueue.objects.filter(queue=queue).delete()[0]:
            raise Conflict(f"Queue {queue} is not paused.")
        _audit(OperatorAction.Action.RESUME, by=by, reason=reason.strip(), queue=queue)
        transaction.on_commit(pauses.tell_workers, robust=True)


# --- jobs ------------------------------------------------------------------------------------


def cancel(job_id: str, *, by: AbstractBaseUser, reason: str) -> Job:
    """Cancel a job that no run holds: scheduled, queued, or waiting for its next retry. It
    becomes `cancelled` (final), with the reason; a message of it still on the broker is
    dropped by the claim. One conditional UPDATE: against a worker claiming the job at the same
    moment, exactly one of the two wins. Raises Job.DoesNotExist, or Conflict with why not.

    A running job declared `cancellable_while_running` (a long export) is asked to stop
    instead: `cancel_requested_at` is set, and the returned job is still `running`
    (Job.stopping). Its run sees the request at its next progress report and ends the job
    `cancelled` with this reason (jobs.base.LedgerTask.report_progress); if the run finishes
    first, the request came too late and the job stays as its run ended it. Any other running
    job is refused: it ends by itself.

    Not cancellable besides running and ended jobs: the machinery's own jobs (cancelling the
    writing of a dead letter would hide a dead job from everyone), and a job its stopping
    worker has handed back while its run may still be finishing (queued again, but until the
    run reaches its next safe point it can still perform its effect; the next claim clears it)."""
    reason = _required(reason, "cancel a job")
    with transaction.atomic():
        cancellable = (
            Job.objects.filter(pk=job_id, state__in=Job.CANCELLABLE_STATES)
            .exclude(name__in=HOUSEKEEPING_JOBS)
            .exclude(state=State.QUEUED, stalled_reason=Job.Stall.HANDED_BACK)
        )
        cancelled = cancellable.update(
            state=Job.State.CANCELLED,
            outcome_reason=reason,
            finished_at=DbNow(),
            next_attempt_at=None,
            stalled_reason="",
        )
        job = Job.objects.get(pk=job_id)
        if not cancelled and job.state == State.RUNNING and cancellable_while_running(job.name):
            # Conditional too: a run that ended meanwhile is not asked anything, and a second
            # request is told the first is pending.
            asked = Job.objects.filter(
                pk=job_id, state=State.RUNNING, cancel_requested_at__isnull=True
            ).update(cancel_requested_at=timezone.now())
            job.refresh_from_db()
            if not asked:
                raise Conflict(_why_not_cancellable(job))
            _audit(OperatorAction.Action.CANCEL, by=by, reason=reason, job=job)
            return job
        if not cancelled:
            raise Conflict(_why_not_cancellable(job))
        _audit(OperatorAction.Action.CANCEL, by=by, reason=reason, job=job)
        # Counted and told like any other end of a job (an order whose last open job is
        # cancelled has settled), once the cancel has committed.
        transaction.on_commit(
            lambda: signals.finished(
                job_id=str(job.pk),
                name=job.name,
                outcome=Job.State.CANCELLED,
                concerning_type_id=job.concerning_type_id,
                concerning_id=job.concerning_id,
            ),
            robust=True,
        )
    return job


def cancel_waiting(*, concerning: models.Model, names: Collection[str], reason: str) -> list[Job]:
    """Cancel the jobs about `concerning` with these names that no run holds (scheduled,
    queued, or waiting for their next retry), with the reason, in the caller's transaction:
    a business change has made them pointless (a review reminder for an order that was
    cancelled). Not an operator's act, so not audited; the rule is the same as `cancel`'s, by
    the same conditional UPDATE, so against a worker claiming one of them at the same moment
    exactly one of the two wins (a job that is running already ends by itself, and should
    check what it is about when it runs). The jobs cancelled, as they are now."""
    if transaction.get_autocommit():
        raise RuntimeError("cancel_waiting belongs in the caller's transaction")
    waiting = (
        Job.objects.filter(
            concerning_type=ContentType.objects.get_for_model(concerning),
            concerning_id=concerning.pk,
            name__in=list(names),
            state__in=Job.CANCELLABLE_STATES,
        )
        .exclude(name__in=HOUSEKEEPING_JOBS)
        .exclude(state=State.QUEUED, stalled_reason=Job.Stall.HANDED_BACK)
    )
    ids = list(waiting.values_list("pk", flat=True))
    if not ids:
        return []
    # Conditional again on the states: a job claimed since the read above stays its run's.
    waiting.filter(pk__in=ids).update(
        state=Job.State.CANCELLED,
        outcome_reason=reason,
        finished_at=DbNow(),
        next_attempt_at=None,
        stalled_reason="",
    )
    cancelled = list(
        Job.objects.filter(pk__in=ids, state=Job.State.CANCELLED, outcome_reason=reason)
    )
    for job in cancelled:
        transaction.on_commit(_tell_finished(job), robust=True)
    return cancelled


def _tell_finished(job: Job) -> Callable[[], None]:
    return lambda: signals.finished(
        job_id=str(job.pk),
        name=job.name,
        outcome=Job.State.CANCELLED,
        concerning_type_id=job.concerning_type_id,
        concerning_id=job.concerning_id,
    )


def stoppable_job_names() -> frozenset[str]:
    """The jobs an operator may cancel while they run (for the dashboard's buttons)."""
    return frozenset(name for name in ledger_job_names() if cancellable_while_running(name))


def _why_not_cancellable(job: Job) -> str:
    if job.name in HOUSEKEEPING_JOBS:
        return "The job machinery's own jobs cannot be cancelled."
    if job.state == State.QUEUED and job.stalled_reason == Job.Stall.HANDED_BACK:
        return (
            "Its worker is stopping and handed it back; its run may still be finishing. "
            "Try again in a few seconds."
        )
    if job.stopping and job.cancel_requested_at is not None:
        return (
            f"A cancel was asked already, at {job.cancel_requested_at:%H:%M:%S} UTC; the job "
            "stops at its next progress report."
        )
    if job.state == Job.State.RUNNING:
        return "The job is running: a running job cannot be cancelled; it ends by itself."
    return f"The job has ended already ({job.state}); only a job that has not run can be cancelled."


# --- dead letters ----------------------------------------------------------------------------


def requeue(letter: DeadLetter, *, by: AbstractBaseUser, reason: str = "") -> Job:
    """Run a dead job again: same job id, same arguments, so the same idempotency keys.

    It starts over with a fresh retry budget; if it dies again, its letter opens again.
    """
    with transaction.atomic():
        _close(letter, DeadLetter.Status.REQUEUED, by=by, reason=reason)
        # A new epoch makes every message from before the requeue stale (ledger.claim); the
        # retry count starts over, and so does the budget.
        requeued = Job.objects.filter(pk=letter.job_id, state=State.DEAD).update(
            state=State.QUEUED,
            epoch=F("epoch") + 1,
            retries=0,
            lost_runs=0,
            started_at=None,
            published_at=None,
            finished_at=None,
            next_attempt_at=None,
            lease_until=None,
            # A fresh start: a stop asked of an earlier run does not apply to this one.
            cancel_requested_at=None,
        )
        if not requeued:
            raise NotOpen(f"the job of dead letter {letter.pk} is not dead")
        job = Job.objects.get(pk=letter.job_id)
        _audit(OperatorAction.Action.REQUEUE, by=by, reason=reason, job=job, letter=letter)
        # Sent off the request, as any committed job (a lambda, not a partial: see
        # jobs.dispatch.enqueue_all).
        transaction.on_commit(lambda: publisher.submit([job]), robust=True)
    return job


def discard(letter: DeadLetter, *, by: AbstractBaseUser, reason: str) -> None:
    """Close the letter for good; the job stays dead. A reason is required: it is the audit."""
    reason = _required(reason, "discard a dead letter")
    with transaction.atomic():
        _close(letter, DeadLetter.Status.DISCARDED, by=by, reason=reason)
        _audit(OperatorAction.Action.DISCARD, by=by, reason=reason, job=letter.job, letter=letter)


def open_letters(*, job_name: str = "", error_contains: str = "") -> QuerySet[DeadLetter]:
    """The open dead letters of a job name (exact) whose error contains a text (any case)."""
    letters = DeadLetter.objects.filter(status=DeadLetter.Status.OPEN)
    if job_name:
        letters = letters.filter(job__name=job_name)
    if error_contains:
        letters = letters.filter(error__icontains=error_contains)
    return letters


# Dead letters one bulk call acts on at most, each in a transaction of its own: a request must
# end well within its timeout, and a list of ids too long for one query (SQLite takes 32,766
# parameters) is never built. The answer says how many still match, for the next call.
MATCHING_AT_A_TIME = 500


@dataclass(frozen=True)
class ActedOn:
    done: int  # requeued or discarded by this call
    left: int  # open letters that still match: the next call's


def requeue_matching(
    *, job_name: str = "", error_contains: str = "", by: AbstractBaseUser, reason: str = ""
) -> ActedOn:
    """Requeue the open dead letters matching the filter, oldest first, MATCHING_AT_A_TIME at
    most, each audited."""
    return _each_matching(
        job_name, error_contains, lambda letter: requeue(letter, by=by, reason=reason)
    )


def discard_matching(
    *, job_name: str = "", error_contains: str = "", by: AbstractBaseUser, reason: str
) -> ActedOn:
    """Discard the open dead letters matching the filter, oldest first, MATCHING_AT_A_TIME at
    most, each audited."""
    reason = _required(reason, "discard dead letters")
    return _each_matching(
        job_name, error_contains, lambda letter: discard(letter, by=by, reason=reason)
    )


def _each_matching(
    job_name: str, error_contains: str, act: Callable[[DeadLetter], object]
) -> ActedOn:
    if not (job_name or error_contains):
        raise ValueError("Give a job name or an error text: a filter names what to act on.")
    matching = open_letters(job_name=job_name, error_contains=error_contains)
    done = 0
    # One transaction per letter, as one at a time: a letter someone else closed meanwhile is
    # skipped, and what was done stays done if a later one fails.
    # The longest failed first: the open letters' index (deadletter_open) holds that order.
    for letter in matching.select_related("job").order_by("failed_at", "pk")[:MATCHING_AT_A_TIME]:
        try:
            act(letter)
        except NotOpen:
            continue
        done += 1
    return ActedOn(done=done, left=matching.count())


def _close(letter: DeadLetter, status: str, *, by: AbstractBaseUser, reason: str) -> None:
    # Conditional: of two operators acting on one letter at once, one wins, the other is told.
    closed = DeadLetter.objects.filter(pk=letter.pk, status=DeadLetter.Status.OPEN).update(
        status=status, resolved_by_id=by.pk, resolved_at=timezone.now(), resolution_note=reason
    )
    if not closed:
        raise NotOpen(f"dead letter {letter.pk} is not open")
    letter.refresh_from_db()

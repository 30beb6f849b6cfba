"""What operators see and do: queue depth and lag, throughput, dead letters and their fate.

Figures come from the broker (how many messages wait) and the ledger (how long the oldest has
waited, what finished), so they agree with what the order pages and the API show.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, F, Min
from django.utils import timezone

from jobs import broker, health
from jobs.dispatch import publisher
from jobs.models import DeadLetter, DeadLetterAction, Job

State = Job.State


@dataclass(frozen=True)
class QueueStats:
    queue: str
    depth: int | None  # None: the broker did not answer
    oldest_age_s: float | None  # None: nothing waiting


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
    now = timezone.now()
    depths = broker.queue_depths()
    # Lag: how long the oldest job published to each queue has waited without starting.
    oldest = dict(
        Job.objects.filter(state=State.QUEUED, published_at__isnull=False)
        .values_list("queue")
        .annotate(oldest=Min("published_at"))
    )
    queues = [
        QueueStats(
            queue=queue,
            depth=depths[queue],
            oldest_age_s=_age(now, oldest.get(queue)),
        )
        for queue in settings.QUEUES
    ]
    counts = dict(Job.objects.values_list("state").annotate(n=Count("pk")))
    recent = dict(
        Job.objects.filter(finished_at__gte=now - timedelta(minutes=1))
        .values_list("state")
        .annotate(n=Count("pk"))
    )
    return Stats(
        queues=queues,
        jobs={state: counts.get(state, 0) for state in State.values},
        dead_letters_open=DeadLetter.objects.filter(status=DeadLetter.Status.OPEN).count(),
        finished_last_minute=recent.get(State.SUCCEEDED, 0) + recent.get(State.DEAD, 0),
        failed_last_minute=recent.get(State.DEAD, 0),
        workers=health.workers_online(),
        stalled=stalled_jobs(now),
    )


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


def operator(user: AbstractBaseUser | AnonymousUser) -> AbstractBaseUser:
    """The staff member acting, whom the views' staff-only checks let through; anyone else is
    refused here too, for the audit names who acted."""
    if isinstance(user, AnonymousUser) or not getattr(user, "is_staff", False):
        raise PermissionDenied
    return user


def requeue(letter: DeadLetter, *, by: AbstractBaseUser, reason: str = "") -> Job:
    """Run a dead job again: same job id, same arguments, so the same idempotency keys.

    It starts over with a fresh retry budget; if it dies again, its letter opens again.
    """
    with transaction.atomic():
        _close(letter, DeadLetter.Status.REQUEUED, by=by, reason=reason)
        DeadLetterAction.objects.create(
            letter=letter, action=DeadLetterAction.Action.REQUEUE, by_id=by.pk, reason=reason
        )
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
        )
        if not requeued:
            raise NotOpen(f"the job of dead letter {letter.pk} is not dead")
        job = Job.objects.get(pk=letter.job_id)
        # Sent off the request, as any committed job (a lambda, not a partial: see
        # jobs.dispatch.enqueue_all).
        transaction.on_commit(lambda: publisher.submit([job]), robust=True)
    return job


def discard(letter: DeadLetter, *, by: AbstractBaseUser, reason: str) -> None:
    """Close the letter for good; the job stays dead. A reason is required: it is the audit."""
    if not reason.strip():
        raise ValueError("A reason is required to discard a dead letter.")
    with transaction.atomic():
        _close(letter, DeadLetter.Status.DISCARDED, by=by, reason=reason)
        DeadLetterAction.objects.create(
            letter=letter, action=DeadLetterAction.Action.DISCARD, by_id=by.pk, reason=reason
        )


def _close(letter: DeadLetter, status: str, *, by: AbstractBaseUser, reason: str) -> None:
    # Conditional: of two operators acting on one letter at once, one wins, the other is told.
    closed = DeadLetter.objects.filter(pk=letter.pk, status=DeadLetter.Status.OPEN).update(
        status=status, resolved_by_id=by.pk, resolved_at=timezone.now(), resolution_note=reason
    )
    if not closed:
        raise NotOpen(f"dead letter {letter.pk} is not open")
    letter.refresh_from_db()

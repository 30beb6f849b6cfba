"""The outbox relay: publish what the ledger says should be on the broker and may not be.

`manage.py relay_outbox` runs `relay` every JOBS_RELAY_INTERVAL_SECONDS, and beat runs it every
few minutes as a backstop. Each round starts with `publish_due`, which hands scheduled jobs to
the workers when their due time comes (the review reminder, an hour after its order): the
relay process is what makes them punctual. The relay is what makes the
ledger the recovery clock, not the broker's visibility timeout: docs/guarantees.md says what
bounds each recovery. Both sweeps claim each row with
a conditional update before publishing it, so two of them running at once publish it once.
Every time compared here is the database's clock (jobs.clock), so a relay on a host whose
clock is off neither leaves a dead run's job sitting nor publishes a live one's.
"""

from django.conf import settings
from django.db.models import F, Q

from jobs import broker
from jobs.clock import DbNow
from jobs.dispatch import publish
from jobs.models import Job

SWEEP_LIMIT = 500


def publish_due(*, limit: int = SWEEP_LIMIT) -> int:
    """Publish scheduled jobs whose due time has come. Returns how many were published."""
    published = 0
    due = Job.objects.filter(state=Job.State.SCHEDULED, eta__lte=DbNow()).order_by("eta")
    for job in due[:limit]:
        # The conditional update is the claim: two sweeps cannot both publish a due job.
        # Unpublished, it is left to the relay like any other.
        if Job.objects.filter(pk=job.pk, state=Job.State.SCHEDULED).update(
            state=Job.State.QUEUED, published_at=None
        ):
            published += publish(job, force=True, source="due")
    return published


def relay(*, limit: int = SWEEP_LIMIT) -> int:
    """Publish what the ledger says should be on the broker and is not. Returns the count.

    - scheduled jobs whose time has come (as `publish_due`);
    - queued jobs committed but never published (broker down, process killed after commit);
    - retries that fell due: a retry waits in the ledger, not as a countdown in a worker;
    - running jobs whose lease ran out: their process died (its heartbeat stopped renewing
      the lease), or a stopping worker could not hand them back. Published once per lease;
      also a row never stamped published (its publisher died between the send and the stamp);
    - published jobs that nobody started for JOBS_STALLED_AFTER_SECONDS while their queue is
      empty: their message is gone (taken by a worker that died before starting it, or lost
      with a broker that restarted empty), a dead run's rescue included. A queue with
      messages waiting is a backlog, not a loss: nothing of it is published again, so a
      spike is not multiplied.
    Each row is claimed by a conditional update first, so two relays publish it once; a
    second copy of a message is harmless anyway (jobs.ledger.claim).
    """
    now = DbNow()
    published = publish_due(limit=limit)
    grace = DbNow(-settings.JOBS_RELAY_AFTER_SECONDS)
    stalled = DbNow(-settings.JOBS_STALLED_AFTER_SECONDS)
    State = Job.State
    sweeps: list[tuple[Q, str]] = [
        (Q(state=State.QUEUED, published_at__isnull=True, created_at__lte=grace), ""),
        (
            Q(state=State.RETRYING, next_attempt_at__lte=now)
            & (Q(published_at__isnull=True) | Q(published_at__lt=F("next_attempt_at"))),
            "",
        ),
        (
            # Not yet published again since its lease ran out. Or never stamped published at
            # all: the publisher stamps after it sends, and a process killed in between leaves
            # a job that a worker started unstamped.
            Q(state=State.RUNNING, lease_until__lte=grace)
            & (Q(published_at__isnull=True) | Q(published_at__lt=F("lease_until"))),
            Job.Stall.WORKER_LOST,
        ),
    ]
    quiet = [queue for queue, depth in broker.queue_depths().items() if depth == 0]
    if quiet:
        sweeps.append(
            (
                Q(queue__in=quiet, published_at__lte=stalled)
                & (
                    Q(state=State.QUEUED)
                    | Q(state=State.RETRYING, published_at__gte=F("next_attempt_at"))
                    # A dead run's rescue, published and not taken since.
                    | Q(
                        state=State.RUNNING,
                        lease_until__lte=grace,
                        published_at__gte=F("lease_until"),
                    )
                ),
                Job.Stall.MESSAGE_LOST,
            )
        )
    for due, reason in sweeps:
        for job in Job.objects.filter(due).order_by("created_at")[:limit]:
            if not _claim_for_relay(job, reason=reason):
                continue
            # A retry's message is one retry further than the run that failed.
            retries = job.retries + 1 if job.state == State.RETRYING else job.retries
            if not publish(job, retries=retries, force=True, source="relay"):
                Job.objects.filter(pk=job.pk).update(
                    published_at=job.published_at, publishes=F("publishes") - 1
                )
                return published  # the broker is not answering: try again next round
            published += 1
    return published


def _claim_for_relay(job: Job, *, reason: str) -> bool:
    """Stamp the row as published now (and why, if it was found stalled), if nobody else has
    touched it since we read it."""
    stall = {"stalled_reason": reason} if reason else {}
    return bool(
        Job.objects.filter(
            pk=job.pk,
            state=job.state,
            published_at=job.published_at,
            retries=job.retries,
            lease_until=job.lease_until,
        ).update(published_at=DbNow(), publishes=F("publishes") + 1, **stall)
    )

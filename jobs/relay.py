"""The outbox relay: publish what the ledger says should be on the broker and may not be.

`manage.py relay_outbox` runs `relay` every JOBS_RELAY_INTERVAL_SECONDS, and beat runs it as a
backstop; beat also runs `publish_due`, which hands scheduled jobs to the workers when their
due time comes (the review reminder, an hour after its order). Both sweeps claim each row with
a conditional update before publishing it, so two of them running at once publish it once.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from jobs.dispatch import publish
from jobs.models import Job

SWEEP_LIMIT = 500


def publish_due(*, limit: int = SWEEP_LIMIT) -> int:
    """Publish scheduled jobs whose due time has come. Returns how many were published."""
    published = 0
    due = Job.objects.filter(state=Job.State.SCHEDULED, eta__lte=timezone.now()).order_by("eta")
    for job in due[:limit]:
        # The conditional update is the claim: two sweeps cannot both publish a due job.
        # Unpublished, it is left to the relay like any other.
        if Job.objects.filter(pk=job.pk, state=Job.State.SCHEDULED).update(
            state=Job.State.QUEUED, published_at=None
        ):
            published += publish(job, force=True)
    return published


def relay(*, limit: int = SWEEP_LIMIT) -> int:
    """Publish what the ledger says should be on the broker and may not be. Returns the count.

    - queued jobs committed but never published (broker down, process killed after commit);
    - queued jobs published long ago and never started (a message lost with the broker);
    - running jobs whose lease has passed (the run died, or its last ledger write failed);
    - retrying jobs well past their next attempt (the retry message was lost).
    Each row is claimed by a conditional update first, so two relays publish it once.
    """
    now = timezone.now()
    grace = timedelta(seconds=settings.JOBS_RELAY_AFTER_SECONDS)
    stranded = Q(state=Job.State.QUEUED, published_at__isnull=True, created_at__lte=now - grace)
    lost = Q(
        state=Job.State.QUEUED,
        started_at__isnull=True,
        published_at__lte=now - timedelta(seconds=settings.JOBS_REPUBLISH_AFTER_SECONDS),
    )
    # Rescues are published again only once per lease or visibility period, so a rescue
    # message that waits behind a backlog is not joined by more copies every round.
    lease = timedelta(seconds=settings.JOBS_LEASE_SECONDS)
    visibility = timedelta(seconds=settings.BROKER_VISIBILITY_TIMEOUT_SECONDS)
    expired = Q(
        state=Job.State.RUNNING, lease_until__lte=now - grace, published_at__lte=now - lease
    )
    overdue = Q(
        state=Job.State.RETRYING,
        next_attempt_at__lte=now - visibility,
        published_at__lte=now - visibility,
    )
    published = 0
    for job in Job.objects.filter(stranded | lost | expired | overdue).order_by("created_at")[
        :limit
    ]:
        if not _claim_for_relay(job, now):
            continue
        # A retrying job's next message is one retry further than the run that failed.
        retries = job.retries + 1 if job.state == Job.State.RETRYING else job.retries
        if not publish(job, retries=retries, force=True):
            Job.objects.filter(pk=job.pk).update(published_at=job.published_at)
            break  # the broker is not answering: try again next round
        published += 1
    return published


def _claim_for_relay(job: Job, now: datetime) -> bool:
    """Stamp the row as published now, if nobody else has touched it since we read it."""
    return bool(
        Job.objects.filter(
            pk=job.pk,
            state=job.state,
            published_at=job.published_at,
            retries=job.retries,
            lease_until=job.lease_until,
        ).update(published_at=now)
    )

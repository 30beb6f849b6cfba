"""The one way to start background work: record it in the ledger, publish it after commit.

    enqueue(send_welcome_email, concerning=customer, customer_id=customer.pk)

`enqueue` writes a ledger row in the caller's transaction; the message is published only when
that transaction commits (`transaction.on_commit`), so a rolled-back request publishes nothing.
If the broker is down at that moment, or the process dies between commit and publish, the row
stays unpublished and the relay (`relay`, run by `manage.py relay_outbox` and by beat) publishes
it. Nothing else in the code base calls `.delay()` or `.apply_async()` for a ledger job.
"""

import logging
import time
from datetime import datetime, timedelta
from functools import partial

from celery import Task, current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from jobs import ledger, log_context
from jobs.models import Job
from jobs.routing import queue_for
from shop.models import Customer, Order

logger = logging.getLogger(__name__)

Concerning = Customer | Order | None
SWEEP_LIMIT = 500


class _BrokerPause:
    """After a failed publish, don't try again for a few seconds: every request during an
    outage would otherwise wait for its own connection timeout. The jobs wait in the ledger."""

    resume_at = 0.0

    def active(self) -> bool:
        return time.monotonic() < self.resume_at

    def start(self) -> None:
        self.resume_at = time.monotonic() + settings.JOBS_BROKER_DOWN_PAUSE_SECONDS

    def end(self) -> None:
        self.resume_at = 0.0


broker_pause = _BrokerPause()


def enqueue(
    task: Task,
    /,
    *,
    concerning: Concerning = None,
    eta: datetime | None = None,
    **kwargs: object,
) -> Job:
    """Record `task(**kwargs)` as a job; publish it after commit, or when `eta` is due.

    kwargs must be small JSON values (ids, not objects): they are the message body.
    """
    order = concerning if isinstance(concerning, Order) else None
    customer = concerning if isinstance(concerning, Customer) else None
    job = Job.objects.create(
        name=task.name,
        kwargs=kwargs,
        queue=queue_for(task.name),
        state=Job.State.SCHEDULED if eta else Job.State.QUEUED,
        eta=eta,
        order=order,
        customer_id=order.customer_id if order else (customer.pk if customer else None),
        request_id=log_context.request_id.get(),
    )
    if eta is None:
        transaction.on_commit(partial(publish, job), robust=True)
    return job


def publish(job: Job, *, retries: int = 0, force: bool = False) -> bool:
    """Send the job's message; True if the broker took it.

    Safe to repeat: the message carries the job id as task id and the retry count it is for,
    and a worker runs a job only if its ledger row says this message is the current one
    (jobs.ledger.claim).
    """
    if broker_pause.active() and not force:
        return False
    try:
        current_app.send_task(
            job.name,
            kwargs=job.kwargs,
            task_id=str(job.id),
            queue=job.queue,
            retries=retries,
            retry_policy=settings.CELERY_TASK_PUBLISH_RETRY_POLICY,
            headers={log_context.HEADER: job.request_id, ledger.EPOCH_HEADER: job.epoch},
        )
    except Exception:
        # The row is committed: the relay will publish it. Log, don't fail the request that
        # is answering the user right now.
        broker_pause.start()
        logger.warning("publish of job %s (%s) failed; left to the relay", job.id, job.name)
        return False
    broker_pause.end()
    Job.objects.filter(pk=job.pk, published_at__isnull=True).update(published_at=timezone.now())
    return True


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

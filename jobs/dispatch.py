"""The one way to start background work: record it in the ledger, publish it after commit.

    enqueue(send_welcome_email, concerning=customer, customer_id=customer.pk)

`enqueue` writes a ledger row in the caller's transaction; the message is published only when
that transaction commits (`transaction.on_commit`), so a rolled-back request publishes nothing.
If the broker is down at that moment, the row stays unpublished and the relay
(`relay_unpublished`, run by beat) publishes it later. Nothing else in the code base calls
`.delay()` or `.apply_async()`.
"""

import logging
from datetime import datetime, timedelta
from functools import partial

from celery import Task, current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs.models import Job
from shop.models import Customer, Order

logger = logging.getLogger(__name__)

Concerning = Customer | Order | None


def queue_for(task_name: str) -> str:
    route = settings.CELERY_TASK_ROUTES.get(task_name, {})
    return route.get("queue", settings.CELERY_TASK_DEFAULT_QUEUE)


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
    )
    if eta is None:
        transaction.on_commit(partial(publish, job), robust=True)
    return job


def publish(job: Job) -> bool:
    """Send the job's message; True if the broker took it.

    Safe to repeat: the message carries the job id as task id, and a worker skips a job that
    already finished (jobs.ledger.claim).
    """
    try:
        current_app.send_task(
            job.name,
            kwargs=job.kwargs,
            task_id=str(job.id),
            queue=job.queue,
            retry_policy=settings.CELERY_TASK_PUBLISH_RETRY_POLICY,
        )
    except Exception:
        # The row is committed and unpublished: the relay will publish it. Log, don't fail
        # the request that is answering the user right now.
        logger.warning("publish of job %s (%s) failed; left to the relay", job.id, job.name)
        return False
    Job.objects.filter(pk=job.pk, published_at__isnull=True).update(published_at=timezone.now())
    return True


def publish_due(*, limit: int = 500) -> int:
    """Publish scheduled jobs whose due time has come. Returns how many were published."""
    published = 0
    due = Job.objects.filter(state=Job.State.SCHEDULED, eta__lte=timezone.now()).order_by("eta")
    for job in due[:limit]:
        # The conditional update is the claim: two beats (or a beat and an operator) cannot
        # both publish the same due job.
        if Job.objects.filter(pk=job.pk, state=Job.State.SCHEDULED).update(state=Job.State.QUEUED):
            published += publish(job)
    return published


def relay_unpublished(*, older_than_seconds: int | None = None, limit: int = 500) -> int:
    """Publish queued jobs that were committed but never reached the broker."""
    if older_than_seconds is None:
        older_than_seconds = settings.JOBS_RELAY_AFTER_SECONDS
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stranded = Job.objects.filter(
        state=Job.State.QUEUED, published_at__isnull=True, created_at__lte=cutoff
    ).order_by("created_at")
    return sum(publish(job) for job in stranded[:limit])

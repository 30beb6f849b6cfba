"""The one way to start background work: record it in the ledger, publish it after commit.

    enqueue(send_welcome_email, concerning=customer, customer_id=customer.pk)
    enqueue_all([new_job(charge_payment, concerning=order, order_id=order.pk), ...])

A job is recorded as a ledger row in the caller's transaction; its message is published only
when that transaction commits (`transaction.on_commit`), so a rolled-back request publishes
nothing. `enqueue_all` records several jobs with one INSERT and publishes them with one round
trip to the broker (kombu's publish batch, a Redis pipeline): that is what keeps recording five
jobs cheap on the request path (bench/, "Request latency"). If the broker is down at that
moment, or the process dies between commit and publish, the rows stay unpublished and the
relay (`relay`, run by `manage.py relay_outbox` and by beat) publishes them. Nothing else in
the code base calls `.delay()` or `.apply_async()` for a ledger job.
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta
from functools import partial

from celery import Task, current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from jobs import ledger, log_context
from jobs.base import LedgerTask
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


def new_job(
    task: Task,
    /,
    *,
    concerning: Concerning = None,
    eta: datetime | None = None,
    **kwargs: object,
) -> Job:
    """An unsaved ledger row for `task(**kwargs)`, to be recorded by `enqueue_all`; due at
    `eta` if given (kept in the database until then), else at once.

    kwargs must be small JSON values (ids, not objects): they are the message body.
    """
    if not isinstance(task, LedgerTask):
        # Only a LedgerTask claims its row before running: anything else would run untracked.
        raise TypeError(f"{task.name} is not declared on jobs.base.LedgerTask")
    order = concerning if isinstance(concerning, Order) else None
    customer = concerning if isinstance(concerning, Customer) else None
    return Job(
        name=task.name,
        kwargs=kwargs,
        queue=queue_for(task.name),
        state=Job.State.SCHEDULED if eta else Job.State.QUEUED,
        eta=eta,
        order=order,
        customer_id=order.customer_id if order else (customer.pk if customer else None),
        request_id=log_context.request_id.get(),
    )


def enqueue_all(jobs: list[Job]) -> list[Job]:
    """Record the jobs in the caller's transaction with one INSERT; publish those due now
    together when it commits."""
    Job.objects.bulk_create(jobs)
    due_now = [job for job in jobs if job.eta is None]
    if due_now:
        after_commit = run_here if _run_in_process.get() else publish_all
        transaction.on_commit(partial(after_commit, due_now), robust=True)
    return jobs


def enqueue(
    task: Task,
    /,
    *,
    concerning: Concerning = None,
    eta: datetime | None = None,
    **kwargs: object,
) -> Job:
    """Record `task(**kwargs)` as a job; publish it after commit, or when `eta` is due."""
    return enqueue_all([new_job(task, concerning=concerning, eta=eta, **kwargs)])[0]


# Set by `jobs_run_in_process`: jobs recorded in this context run here once their
# transaction commits, instead of being published.
_run_in_process: ContextVar[bool] = ContextVar("run_jobs_in_process", default=False)


@contextmanager
def jobs_run_in_process() -> Iterator[None]:
    """Run the jobs recorded inside this block in this process, each as soon as its
    transaction commits, and the jobs they record in turn: the synchronous way, as a project
    without workers does it. Only the benchmarks' side-by-side comparison uses it
    (bench/views.py); requests of the app never wait for their jobs."""
    token = _run_in_process.set(True)
    try:
        yield
    finally:
        _run_in_process.reset(token)


def run_here(jobs: list[Job]) -> None:
    """Run the jobs one after the other in this process, through the same task code and
    ledger bookkeeping as on a worker (Celery's `apply`)."""
    for job in jobs:
        current_app.tasks[job.name].apply(
            kwargs=job.kwargs,
            task_id=str(job.id),
            headers={log_context.HEADER: job.request_id, ledger.EPOCH_HEADER: job.epoch},
        )


def publish(job: Job, *, retries: int = 0, force: bool = False) -> bool:
    """Send the job's message; True if the broker took it."""
    return publish_all([job], retries=retries, force=force) == 1


def publish_all(jobs: list[Job], *, retries: int = 0, force: bool = False) -> int:
    """Send the jobs' messages in one round trip; how many the broker took (all or none).

    Safe to repeat: each message carries its job's id as task id and the retry count it is
    for, and a worker runs a job only if its ledger row says this message is the current one
    (jobs.ledger.claim).
    """
    if broker_pause.active() and not force:
        return 0
    try:
        with current_app.producer_or_acquire() as producer:
            # Give up on a broker that is down as soon as send_task would (its retry policy),
            # not after the connection's own, longer, retries.
            producer.connection.ensure_connection(**settings.CELERY_TASK_PUBLISH_RETRY_POLICY)
            with producer.batch():
                for job in jobs:
                    _send(producer, job, retries=retries)
    except Exception:
        # The rows are committed: the relay will publish them. Log, don't fail the request
        # that is answering the user right now. (A batch that failed half-way may have
        # delivered some messages: publishing them again is harmless, see above.)
        broker_pause.start()
        logger.warning(
            "publish of %d job(s) (%s) failed; left to the relay",
            len(jobs),
            ", ".join(sorted({job.name for job in jobs})),
        )
        return 0
    broker_pause.end()
    Job.objects.filter(pk__in=[job.pk for job in jobs], published_at__isnull=True).update(
        published_at=timezone.now()
    )
    return len(jobs)


_declared_queues: set[str] = set()


def _send(producer, job: Job, *, retries: int) -> None:
    """Celery's own task message (protocol 2, `create_task_message`) published with kombu:
    what `send_task` does, without what a ledger job does not need and what costs most of
    its time (routing a task the row already routes, merging options, declaring the queue
    again for every message; bench/, "Request latency")."""
    app = current_app
    parent = app.current_worker_task  # a job recording another: link them, as send_task does
    headers, properties, body, _ = app.amqp.create_task_message(
        str(job.id),
        job.name,
        (),
        job.kwargs,
        retries=retries,
        argsrepr="()",
        kwargsrepr=repr(job.kwargs),
        root_id=parent and (parent.request.root_id or parent.request.id),
        parent_id=parent and parent.request.id,
        # Said again in the message, whose word overrides the task's on the worker.
        ignore_result=LedgerTask.ignore_result,
    )
    headers[log_context.HEADER] = job.request_id
    headers[ledger.EPOCH_HEADER] = job.epoch
    # Declared once per process (RabbitMQ drops messages for a queue that does not exist yet;
    # the workers declare them too).
    declare = [] if job.queue in _declared_queues else [app.amqp.queues[job.queue]]
    producer.publish(
        body,
        exchange="",
        routing_key=job.queue,
        serializer="json",
        headers=headers,
        delivery_mode="persistent",
        declare=declare,
        retry=False,  # the batch sends everything at its end; publish_all handles a failure
        **properties,
    )
    _declared_queues.add(job.queue)


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

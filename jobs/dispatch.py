"""The one way to start background work: record it in the ledger, publish it after commit.

    enqueue("jobs.send_welcome_email", concerning=customer, customer_id=customer.pk)
    enqueue_all([new_job("jobs.charge_payment", concerning=order, order_id=order.pk), ...])

Jobs are named, the way views are reversed by URL name: the code that records a job (a
service) never imports the module that declares it (an app's tasks.py), so a job's body can
call services that record other jobs without an import cycle. The name must be that of a
task declared on jobs.base.LedgerTask; its decorator says which queue it goes to.

A job is recorded as a ledger row in the caller's transaction; its message is published only
once that transaction commits (`transaction.on_commit`), so a rolled-back request publishes
nothing. `enqueue_all` records several jobs with one INSERT; the process's publisher sends
them from a thread of its own, batched with other requests' jobs in one round trip to the
broker (kombu's publish batch, a Redis pipeline), so the request never waits for the broker,
and stamps them published afterwards. If the broker is down, or the process dies before the
publisher stamps them, the rows stay unpublished and the relay (jobs.relay, run by `manage.py
relay_outbox` and by beat) publishes them. Nothing else in the code base calls `.delay()` or
`.apply_async()` for a ledger job.
"""

import atexit
import collections
import functools
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from celery import Task, current_app
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import close_old_connections, connections, models, router, transaction
from django.db.models import F
from kombu import Producer

from jobs import clock, ledger, log_context, metrics
from jobs.models import Job

logger = logging.getLogger(__name__)


class _BrokerPause:
    """After a failed publish, the publisher does not try again for a few seconds: during an
    outage it would otherwise spend every batch on a connection timeout. The jobs wait in the
    ledger, for the relay."""

    resume_at = 0.0

    def active(self) -> bool:
        return time.monotonic() < self.resume_at

    def start(self) -> None:
        self.resume_at = time.monotonic() + settings.JOBS_BROKER_DOWN_PAUSE_SECONDS

    def end(self) -> None:
        self.resume_at = 0.0


broker_pause = _BrokerPause()


def is_ledger_task(task: Task[Any, Any]) -> bool:
    """Declared on jobs.base.LedgerTask, which claims its ledger row before it runs: a task
    that does not would run untracked. (An attribute, not isinstance: jobs.base records its
    dead letters through this module, which must not import it in turn.)"""
    return bool(getattr(task, "claims_ledger_row", False))


def queue_of_job(name: str) -> str:
    """The queue of the ledger job declared under this name; LookupError if there is none."""
    task = current_app.tasks.get(name)
    if task is None:
        raise LookupError(f"no job is named {name!r}: declare it in an app's tasks.py")
    if not is_ledger_task(task):
        raise LookupError(f"{name} is not declared with jobs.base.job")
    return str(task.queue_name)  # type: ignore[attr-defined]  # a LedgerTask's, said above


def cancellable_while_running(name: str) -> bool:
    """Whether the job declared under this name may be asked to stop while it runs (its
    declaration's `cancellable_while_running`); False for a name no job has."""
    task = current_app.tasks.get(name)
    return bool(task is not None and getattr(task, "cancellable_while_running", False))


def ledger_job_names() -> list[str]:
    """The names of every ledger job this process knows of."""
    return [name for name, task in current_app.tasks.items() if is_ledger_task(task)]


def new_job(
    name: str,
    /,
    *,
    concerning: models.Model | None = None,
    eta: datetime | None = None,
    **kwargs: object,
) -> Job:
    """An unsaved ledger row for the job `name(**kwargs)`, to be recorded by `enqueue_all`;
    due at `eta` if given (kept in the database until then), else at once.

    `concerning` is the model instance the job is about (an order, a customer), if any: its
    page and API show the job. kwargs must be small JSON values (ids, not objects): they are
    the message body.
    """
    job = Job(
        name=name,
        kwargs=kwargs,
        queue=queue_of_job(name),
        state=Job.State.SCHEDULED if eta else Job.State.QUEUED,
        eta=eta,
        request_id=log_context.request_id.get(),
        # Given, not left to the columns' db_default: a DatabaseDefault expression is resolved
        # for every row (a sixth of bulk_create's Python time, pyinstrument), and `_insert_all`
        # writes plain values only.
        outcome_reason="",
        lease_holder="",
        stalled_reason="",
    )
    if concerning is not None:
        if concerning.pk is None:
            # What the generic relation's bulk_create said: never a job about "None".
            raise ValueError(f"new_job({name!r}): concerning {concerning!r}, which is not saved")
        # The columns, not the generic relation's descriptor, which copies a manager and asks
        # the database router twice for each job (a sixth of an order's time building its
        # jobs); the id as the text it is stored as.
        job.concerning_type_id = ContentType.objects.get_for_model(concerning).pk
        job.concerning_id = str(concerning.pk)
    return job


def enqueue_all(jobs: list[Job]) -> list[Job]:
    """Record the jobs in the caller's transaction with one INSERT; once it commits, hand
    those due now to this process's publisher, which sends them off the caller's thread."""
    _insert_all(jobs)
    due_now = [job for job in jobs if job.eta is None]
    if due_now:
        after_commit = run_here if _run_in_process.get() else publisher.submit
        # Not a functools.partial: Django logs a robust hook's failure (the database gone
        # before `published_at` is stamped) by the hook's __qualname__, which a partial lacks;
        # the logging would raise and fail the request that has just committed.
        transaction.on_commit(lambda: after_commit(due_now), robust=True)
    return jobs


def _insert_all(jobs: list[Job]) -> None:
    """What `Job.objects.bulk_create(jobs)` does for rows of plain values, in 0.6 of its time
    (an order's four rows, SQLite's own work included: docs/performance.md). The columns and
    their conversions are the model's own (each field's `pre_save` where it has one, then
    `get_db_prep_save`), without the ORM's query compiler around each value, and without
    RETURNING (every value is given), so a field added to the model is written with no change
    here. A row holding an expression (a DatabaseDefault, an F()) or no id goes through
    bulk_create: a field added with a db_default and no Python default needs a value in
    `new_job`, or every job takes that way (tests/jobs/test_ledger_insert.py fails then). That
    test holds the rows written here to bulk_create's, column by column."""
    if not jobs:
        return
    using = router.db_for_write(Job)
    connection = connections[using]
    fields = _insert_fields()
    rows: list[list[Any]] = []
    for job in jobs:
        values = [
            field.pre_save(job, True) if own_pre_save else getattr(job, field.attname)
            for field, own_pre_save, _ in fields
        ]
        # bulk_create gives a row without an id its default, and resolves expressions.
        if job.pk is None or any(hasattr(value, "resolve_expression") for value in values):
            Job.objects.using(using).bulk_create(jobs)
            return
        rows.append(
            [
                # A NULL is NULL to every field, and a text field stores a str as it is, an
                # integer field an int: converting those was half of the conversions' time.
                value
                if value is None or type(value) is stored_as
                else field.get_db_prep_save(value, connection)
                for (field, _, stored_as), value in zip(fields, values, strict=True)
            ]
        )
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field, _, _ in fields)
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    per_batch = max(connection.ops.bulk_batch_size([field for field, _, _ in fields], jobs), 1)
    with transaction.atomic(using=using, savepoint=False), connection.cursor() as cursor:
        for start in range(0, len(rows), per_batch):
            batch = rows[start : start + per_batch]
            cursor.execute(
                f"INSERT INTO {quote(Job._meta.db_table)} ({columns}) "  # noqa: S608 - names
                f"VALUES {', '.join([row_sql] * len(batch))}",
                [value for row in batch for value in row],
            )
    for job in jobs:
        job._state.adding = False
        job._state.db = using


@functools.cache
def _insert_fields() -> list[tuple["models.Field[Any, Any]", bool, type | None]]:
    """The ledger's columns, each with whether its field sets its value at save time
    (`created_at`'s auto_now_add: a field class that overrides pre_save), and the Python type
    it stores as it is: str for a text column, int for an integer one (a foreign key to an
    integer key included), None for the others."""

    def stored_as(field: "models.Field[Any, Any]") -> type | None:
        target = field.target_field if isinstance(field, models.ForeignKey) else field
        if isinstance(target, models.CharField | models.TextField):
            return str
        return int if isinstance(target, models.IntegerField) else None

    return [
        (field, type(field).pre_save is not models.Field.pre_save, stored_as(field))
        for field in Job._meta.concrete_fields
        if not field.generated
    ]


class _Publisher:
    """Sends committed jobs from a thread of its own, in batches across requests.

    A request never waits for the broker, slow or away: it commits and answers, and a busy
    web process sends one batch for many requests. The rows are stamped published after the
    send, and the stamps of what was sent within STAMP_SECONDS go in one UPDATE: the way from
    a commit to a worker holds no database write, and the process writes once per interval,
    not once per request, beside its requests' own transactions (on SQLite, every write
    queues for one lock). A process that exits waits a moment for what it handed over
    (`flush`, at exit); jobs not sent, or sent and not stamped, when a process dies are in the
    ledger, unpublished, and the relay publishes them.
    """

    BATCH = 500
    FLUSH_SECONDS = 5.0
    # Well under JOBS_RELAY_AFTER_SECONDS, after which the relay takes an unstamped row for
    # stranded and publishes it again.
    STAMP_SECONDS = 0.1

    def __init__(self) -> None:
        self._pending: queue.SimpleQueue[list[Job]] = queue.SimpleQueue()
        self._pid: int | None = None
        self._unsent = 0  # jobs handed over and not yet sent and stamped (or given up on)
        self._lock = threading.Condition()

    def submit(self, jobs: list[Job]) -> None:
        with self._lock:
            if self._pid != os.getpid():  # the first job of this process (or of a fork)
                self._pid, self._unsent = os.getpid(), 0
                self._pending = queue.SimpleQueue()
                threading.Thread(target=self._run, name="job-publisher", daemon=True).start()
                atexit.register(self.flush)
            self._unsent += len(jobs)
            self._pending.put(jobs)

    def flush(self, timeout: float = FLUSH_SECONDS) -> bool:
        """Wait until everything handed over was sent and stamped (or left to the relay);
        False if it took longer than `timeout`."""
        with self._lock:
            return self._lock.wait_for(lambda: self._unsent == 0, timeout=timeout)

    def _run(self) -> None:
        pending = self._pending
        sent: list[Job] = []  # sent, to be stamped at `stamp_at`
        stamp_at = 0.0
        while True:
            try:
                wait = max(0.0, stamp_at - time.monotonic()) if sent else None
                batch = pending.get(timeout=wait)
            except queue.Empty:
                batch = []
            while batch and len(batch) < self.BATCH:
                try:
                    batch = batch + pending.get_nowait()
                except queue.Empty:
                    break
            if batch:
                try:
                    # During a broker outage, not even a try (_BrokerPause): the relay's turn.
                    ok = not broker_pause.active() and _send_all(batch, retries=0, source="commit")
                except Exception:  # never let this thread die: the process would stop publishing
                    logger.exception("publisher: %d job(s) left to the relay", len(batch))
                    ok = False
                if not ok:
                    self._done(len(batch))
                    continue
                if not sent:
                    stamp_at = time.monotonic() + self.STAMP_SECONDS
                sent += batch
            if sent and (time.monotonic() >= stamp_at or len(sent) >= self.BATCH):
                try:
                    _stamp_published(sent)
                except Exception:
                    # The database refused the stamp: the messages are sent, and the relay
                    # publishes the rows again (a second copy, which the claim turns away).
                    logger.exception("publisher: %d job(s) left to the relay", len(sent))
                finally:
                    self._done(len(sent))
                    sent = []
                    try:
                        close_old_connections()
                    except Exception:  # logged, and the thread goes on publishing
                        logger.exception("publisher: could not let go of its connection")

    def _done(self, count: int) -> None:
        with self._lock:
            self._unsent -= count
            self._lock.notify_all()


publisher = _Publisher()


def enqueue(
    name: str,
    /,
    *,
    concerning: models.Model | None = None,
    eta: datetime | None = None,
    **kwargs: object,
) -> Job:
    """Record the job `name(**kwargs)`; publish it after commit, or when `eta` is due."""
    return enqueue_all([new_job(name, concerning=concerning, eta=eta, **kwargs)])[0]


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
            headers={log_context.HEADER: job.request_id, ledger.EPOCH_HEADER: str(job.epoch)},
        )


def publish(job: Job, *, retries: int = 0, force: bool = False, source: str = "relay") -> bool:
    """Send the job's message; True if the broker took it."""
    return publish_all([job], retries=retries, force=force, source=source) == 1


def publish_all(
    jobs: list[Job], *, retries: int = 0, force: bool = False, source: str = "relay"
) -> int:
    """Publish rows already in the ledger again, as the relay does; how many the broker took
    (all or none). `source` says who sends them, for the metrics: "relay" or "due"
    (jobs.relay). Freshly committed rows go through the process's publisher instead
    (`_Publisher`), which sends first and stamps after.

    The rows (unpublished, due, or found stalled) are stamped first, as the relay's claim, so
    that two relays at once publish a row once; if the broker refuses them, the stamp is taken
    back.

    Safe to repeat: each message carries its job's id as task id and the retry count it is
    for, and a worker runs a job only if its ledger row says this message is the current one
    (jobs.ledger.claim).
    """
    if broker_pause.active() and not force:
        return 0
    ids = [job.pk for job in jobs]
    # The database's clock (jobs.clock): the relay compares the stamp with it. Read once per
    # batch, for the exact value to take back if the broker refuses the batch.
    stamped_at = clock.db_now()
    Job.objects.filter(pk__in=ids, published_at__isnull=True).update(
        published_at=stamped_at, publishes=F("publishes") + 1
    )
    if not _send_all(jobs, retries=retries, source=source):
        Job.objects.filter(pk__in=ids, published_at=stamped_at).update(
            published_at=None, publishes=F("publishes") - 1
        )
        return 0
    return len(jobs)


def _stamp_published(jobs: list[Job]) -> None:
    """Mark the sent jobs published, now by the database's clock, those not marked yet:
    whatever state a worker has moved them to meanwhile, since the relay reads a running or
    retrying row's stamp too (a lease's rescue, a retry's message)."""
    for start in range(0, len(jobs), _Publisher.BATCH):
        ids = [job.pk for job in jobs[start : start + _Publisher.BATCH]]
        Job.objects.filter(pk__in=ids, published_at__isnull=True).update(
            published_at=clock.DbNow(), publishes=F("publishes") + 1
        )


def _send_all(jobs: list[Job], *, retries: int, source: str) -> bool:
    """Send the jobs' messages in one round trip; False (logged, counted, and the process's
    publishing paused) if the broker did not take them."""
    try:
        with current_app.producer_or_acquire() as producer:
            # Give up on a broker that is down as soon as send_task would (its retry policy),
            # not after the connection's own, longer, retries.
            producer.connection.ensure_connection(**settings.CELERY_TASK_PUBLISH_RETRY_POLICY)
            with producer.batch():
                for job in jobs:
                    _send(producer, job, retries=retries)
    except Exception:
        # The rows are committed: the relay will publish them. (A batch that failed half-way
        # may have delivered some messages: publishing them again is harmless, see above.)
        broker_pause.start()
        metrics.PUBLISH_FAILURES.labels(source=source).inc()
        logger.warning(
            "publish of %d job(s) (%s) failed; left to the relay",
            len(jobs),
            ", ".join(sorted({job.name for job in jobs})),
        )
        return False
    broker_pause.end()
    for queue_name, sent in collections.Counter(job.queue for job in jobs).items():
        metrics.PUBLISHED.labels(queue=queue_name, source=source).inc(sent)
    return True


_declared_queues: set[str] = set()


def _send(producer: Producer, job: Job, *, retries: int) -> None:
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
        # Said again in the message, whose word overrides the task's on the worker: a ledger
        # job's result is its row (jobs.base.LedgerTask.ignore_result).
        ignore_result=True,
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
        delivery_mode=2,  # persistent, in AMQP's terms (RabbitMQ writes it to disk)
        declare=declare,
        retry=False,  # the batch sends everything at its end; publish_all handles a failure
        **properties,
    )
    _declared_queues.add(job.queue)

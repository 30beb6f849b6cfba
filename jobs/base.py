"""The base every ledger job is declared on: one retry policy, ledger bookkeeping, dead letters.

A job is declared once, in its app's tasks.py, with its name, its queue and anything of the
retry policy that differs for it:

    @job("jobs.send_welcome_email", queue="critical")
    def send_welcome_email(*, customer_id: int) -> dict: ...

A task may say what is transient for it (`autoretry_for`) and, if it must, its own budget
(`max_retries`); everything else comes from here and from settings:

- transient errors retry with exponential backoff, capped, with "equal jitter": each delay is
  drawn from the upper half of its exponential step, so delays never shrink from one attempt
  to the next, and a third party's Retry-After is honoured;
- each delivery claims its job in the ledger first (jobs.ledger): a job that already finished
  (or that an operator cancelled) is not run again, a job of a paused queue goes back to
  wait, a delivery of a job another run holds is dropped (the run's lease, renewed by
  jobs.heartbeat, tells whether it lives), and a job whose workers keep dying is given up;
- every start, retry, success and failure is written to the job's ledger row; a retry is due
  from the ledger (the relay publishes it when it falls due), never a countdown that a
  worker holds and a crash or a broker restart would lose;
- a worker that stops for a deploy hands its running jobs back (jobs.shutdown);
- a permanent error, or a spent budget, moves the job to `dead` and records a dead letter
  through the `dead_letter` queue (jobs.tasks.record_dead_letter).
"""

import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from billiard.einfo import ExceptionInfo
from celery import Task, shared_task
from celery.app.task import Context
from celery.exceptions import Ignore, Reject, Retry, SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from jobs import dispatch, heartbeat, ledger, metrics, pauses, shutdown, signals
from jobs.clock import DbNow
from jobs.errors import CancelRequested, Ended, TransientError
from jobs.models import Job

logger = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 2_000
MAX_TRACEBACK_LENGTH = 20_000
# When the ledger cannot be read at all, look at the message again after this long.
DATABASE_DOWN_RECHECK_SECONDS = 5


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]


RECORD_DEAD_LETTER = "jobs.record_dead_letter"
# Ledger jobs of the job machinery itself, not of the business: the dashboard lists them only
# when asked for, so that they do not push the business jobs out of its recent jobs.
HOUSEKEEPING_JOBS = frozenset({RECORD_DEAD_LETTER})


class LedgerTask(Task[Any, Any]):
    abstract = True
    # What jobs.dispatch looks for before it records a job under a task's name.
    claims_ledger_row = True
    # Where the job's messages go (jobs.routing); said by its declaration.
    queue_name: str | None = None
    # Said by the declaration of a long job that reports its progress (`bind=True`): an
    # operator may cancel it while it runs, and its run stops at its next progress report
    # (report_progress raises CancelRequested). Other running jobs cannot be cancelled.
    cancellable_while_running = False

    # A database that is briefly unreachable and a job that ran past its soft time limit are
    # transient too; an IntegrityError (also a DatabaseError) is not, so it is not listed.
    autoretry_for = (TransientError, OperationalError, InterfaceError, SoftTimeLimitExceeded)
    retry_backoff = settings.JOBS_RETRY_BACKOFF_SECONDS
    retry_backoff_max = settings.JOBS_RETRY_BACKOFF_MAX_SECONDS
    retry_jitter = False  # our own equal jitter is applied in retry()
    max_retries = settings.JOBS_MAX_RETRIES
    acks_late = True
    reject_on_worker_lost = True
    # The ledger row is the job's result: its state, times and error. A TaskResult row for
    # every success would only repeat it, at the cost of a write per job (bench/, "Job
    # machinery"); failures and retries are still stored, with their tracebacks, for the admin,
    # until the job succeeds (on_success forgets them).
    ignore_result = True
    store_errors_even_if_ignored = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        _set_attempt(request, None)
        request.ledger_claim = None  # type: ignore[attr-defined]
        if shutdown.handing_back.is_set():
            # This worker is stopping: the message goes back to the queue, unstarted.
            raise Reject("the worker is stopping", requeue=True)
        job_id = str(request.id)
        given_up: list[Job] = []

        def give_up(job: Job) -> None:
            given_up.append(job)
            self._record_dead_letter(job, error=job.last_error, traceback="")

        try:
            claim = ledger.claim(
                job_id,
                retries=request.retries,
                epoch=int(getattr(request, ledger.EPOCH_HEADER, None) or 0),
                holder=heartbeat.holder_name(str(request.hostname)),
                lease_seconds=settings.JOBS_LEASE_SECONDS,
                max_lost_runs=settings.JOBS_MAX_LOST_RUNS,
                on_give_up=give_up,
            )
        except (OperationalError, InterfaceError) as exc:
            logger.warning("ledger unavailable for job %s (%s); later", request.id, exc)
            self._deliver_again(after_seconds=DATABASE_DOWN_RECHECK_SECONDS)
            raise Ignore("database unavailable, delivered again later") from exc

        if claim.outcome is ledger.Outcome.GAVE_UP and given_up:
            self._finished(given_up[0], outcome=Job.State.DEAD)
        if claim.outcome is ledger.Outcome.PAUSED:
            # Taken before this worker stopped consuming the queue (its prefetch), or by a
            # worker that has not heard of the pause yet (which it now asks to look again):
            # back to the queue, to wait there.
            pauses.ask_again()
            raise Reject("its queue is paused", requeue=True)
        if claim.outcome is not ledger.Outcome.RUN:
            # Finished, stale, or held by a live run (never run beside it: if that run dies,
            # its lease runs out and the relay publishes the job again). Ignore, not a return
            # value: a skipped delivery must store no result under the job's id; Celery 5.7
            # reads a stored SUCCESS as "this task is done" and would not put the message back
            # if the worker running the job's real run died.
            raise Ignore(f"delivery skipped: {claim.outcome.value}")
        _set_attempt(request, claim.attempt)
        request.ledger_claim = claim  # type: ignore[attr-defined]  # as _set_attempt
        started = time.monotonic()
        if claim.attempt == 1 and claim.due_at is not None:
            # The first run only: a retry waits by design, a requeue or a lost run's rescue
            # would count the time of the runs before it.
            # Both by the database's clock (jobs.clock), not this host's.
            waited = ((claim.started_at or timezone.now()) - claim.due_at).total_seconds()
            metrics.PICKUP_LATENCY.labels(queue=self.queue_name).observe(max(0.0, waited))
        heartbeat.hold(job_id, attempt=claim.attempt, node=str(request.hostname))
        try:
            return super().__call__(*args, **kwargs)
        except Ended as ended:
            return self._end(job_id, claim=claim, ended=ended)
        except shutdown.HandedBack:
            ledger.hand_back(job_id, attempt=claim.attempt)
            raise Reject("handed back by a stopping worker", requeue=True) from None
        finally:
            heartbeat.release(job_id)
            metrics.JOB_DURATION.labels(job=self.name).observe(time.monotonic() - started)

    def _end(self, job_id: str, *, claim: ledger.Claim, ended: Ended) -> dict[str, str]:
        """The body ended its job as skipped or declined, or stopped it as an operator asked
        (cancelled): the ledger says so, with the reason.
        A return value, not an error, for Celery: its result says what the ledger says."""
        if claim.attempt > 1:
            self._forget_earlier_runs(job_id)
        try:
            recorded = ledger.mark_ended(
                job_id, attempt=claim.attempt, state=ended.state, reason=ended.reason
            )
        except DatabaseError:
            logger.exception("could not record that job %s was %s", job_id, ended.state)
            recorded = False
        # The ledger is written: on_success has nothing left to do for this run.
        _set_attempt(self.request, None)
        if recorded:
            signals.finished(
                job_id=job_id,
                name=self.name,
                outcome=ended.state,
                concerning_type_id=claim.concerning_type_id,
                concerning_id=claim.concerning_id,
            )
        return {"outcome": ended.state, "reason": ended.reason}

    def report_progress(self, *, done: int, total: int) -> bool:
        """For a long job's body (`bind=True`): record how far it has come, `done` of `total`,
        for the pages and the API. False if this run no longer holds its job: stop then,
        writing nothing more. Raises CancelRequested if an operator asked the job to stop (a
        job declared `cancellable_while_running`): the job then ends `cancelled`."""
        attempt = _attempt(self.request)
        if attempt is None:
            return True  # not a ledger run (called directly): nothing to record
        job_id = str(self.request.id)
        reported = ledger.report_progress(job_id, attempt=attempt, done=done, total=total)
        if reported is ledger.Progress.CANCEL_REQUESTED:
            raise CancelRequested(ledger.cancel_reason(job_id))
        return reported is ledger.Progress.RECORDED

    def _deliver_again(self, *, after_seconds: float) -> None:
        """Publish this same message (same id, retry count, headers) to be looked at later."""
        request = self.request
        options: dict[str, Any] = {"retries": request.retries, "headers": request.headers}
        self.apply_async(
            args=tuple(request.args or ()),
            kwargs=dict(request.kwargs or {}),
            task_id=request.id,
            countdown=after_seconds,
            **options,  # what Celery's own retry passes and its stubs leave out
        )

    def retry(
        self,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        exc: Exception | None = None,
        throw: bool = True,
        eta: datetime | None = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Retry:
        if countdown is not None:
            countdown = countdown / 2 + random.uniform(0, countdown / 2)  # noqa: S311
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            countdown = max(countdown or 0, min(retry_after, self.retry_backoff_max))
        budget = self.max_retries if max_retries is None else max_retries
        attempt = _attempt(self.request)
        within_budget = budget is None or self.request.retries < budget
        if attempt is not None and within_budget and not self.request.is_eager:
            # The retry is due from the ledger: the relay publishes it then, one retry further
            # than this run's message. If this run no longer holds the job (its lease ran out
            # and another run took over), it schedules nothing.
            when = eta or timezone.now() + timedelta(seconds=countdown or 0)
            try:
                held = ledger.mark_retrying(
                    str(self.request.id),
                    attempt=attempt,
                    error=describe(exc) if exc else "",
                    # Due by the database's clock, which the relay reads (jobs.clock).
                    next_attempt_at=eta or DbNow(countdown or 0),
                )
            except DatabaseError:
                # The ledger cannot say it: send the retry as Celery would, a countdown the
                # worker holds; the next claim sorts out whatever the ledger missed.
                logger.exception("could not record the retry of job %s", self.request.id)
                metrics.JOB_RETRIES.labels(job=self.name).inc()
            else:
                if not held:
                    raise Ignore("another run holds this job now; no retry from this one")
                metrics.JOB_RETRIES.labels(job=self.name).inc()
                raise Retry(exc=exc, when=when)
        # Over budget (Celery raises the error: the job goes dead), run in this process (the
        # benchmarks' synchronous way: Celery runs it again at once), or the ledger away.
        return super().retry(
            args=args,
            kwargs=kwargs,
            exc=exc,
            throw=throw,
            eta=eta,
            countdown=countdown,
            max_retries=max_retries,
            **options,
        )

    # The hooks write the ledger only for a run that claimed its job, fenced by that run's
    # attempt number. A failed write is logged, not raised: the job's outcome stands, and the
    # relay's sweep finds a row left `running` once its lease has passed.

    def on_success(
        self, retval: Any, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        attempt = _attempt(self.request)
        if attempt is None:
            return
        if attempt > 1:
            self._forget_earlier_runs(task_id)
        try:
            succeeded = ledger.mark_succeeded(task_id, attempt=attempt)
        except DatabaseError:
            logger.exception("could not record the success of job %s", task_id)
            return
        claim: ledger.Claim | None = getattr(self.request, "ledger_claim", None)
        if succeeded and claim is not None:
            signals.finished(
                job_id=task_id,
                name=self.name,
                outcome=Job.State.SUCCEEDED,
                concerning_type_id=claim.concerning_type_id,
                concerning_id=claim.concerning_id,
            )

    def _forget_earlier_runs(self, task_id: str) -> None:
        """Earlier runs of this job may have stored results under its id (Celery keeps one per
        task id): a RETRY, or a FAILURE (a run killed at the hard time limit, a dead job an
        operator requeued). This run succeeded, so they go, before the ledger says so: once
        it does, the task results hold nothing that contradicts it. A first run stored none,
        and costs no query for it. Apart from the ledger's write, so that a results backend
        that fails cannot undo the success."""
        try:
            self.backend.forget(task_id)
        except NotImplementedError:
            pass  # no results backend: nothing was stored
        except DatabaseError:
            logger.exception("could not forget the earlier results of job %s", task_id)

    def on_failure(
        self,
        exc: Exception,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: ExceptionInfo,
    ) -> None:
        attempt = _attempt(self.request)
        if attempt is None:
            return
        try:
            # One transaction: a job marked dead always gets its dead letter.
            with transaction.atomic():
                job = ledger.mark_dead(task_id, attempt=attempt, error=describe(exc))
                if job is not None:
                    self._record_dead_letter(
                        job,
                        error=describe(exc),
                        traceback=str(einfo.traceback)[-MAX_TRACEBACK_LENGTH:],
                    )
        except DatabaseError:
            logger.exception("could not record the failure of job %s", task_id)
            return
        if job is not None:
            self._finished(job, outcome=Job.State.DEAD)

    def _finished(self, job: Job, *, outcome: str) -> None:
        signals.finished(
            job_id=str(job.pk),
            name=self.name,
            outcome=outcome,
            concerning_type_id=job.concerning_type_id,
            concerning_id=job.concerning_id,
        )

    def _record_dead_letter(self, job: Job, *, error: str, traceback: str) -> None:
        if self.name == RECORD_DEAD_LETTER:
            return  # a dead letter about a dead letter would loop
        letter = dispatch.new_job(
            RECORD_DEAD_LETTER, job_id=str(job.pk), error=error, traceback=traceback
        )
        # About what the dead job was about, so it shows where that job shows.
        letter.concerning_type_id, letter.concerning_id = job.concerning_type_id, job.concerning_id
        dispatch.enqueue_all([letter])


# The run's attempt number, kept on Celery's request context (which takes any attribute) from
# its claim to its last ledger write: the fence of every change it makes.


def _set_attempt(request: Context, attempt: int | None) -> None:
    request.ledger_attempt = attempt  # type: ignore[attr-defined]


def _attempt(request: Context) -> int | None:
    return cast(int | None, getattr(request, "ledger_attempt", None))


Declaration = Callable[[Callable[..., Any]], Task[Any, Any]]


def job(name: str, /, *, queue: str, **options: Any) -> Declaration:
    """Declare a ledger job: its name (what services record it by, for good), its queue, and
    what of the retry policy differs for it (`autoretry_for=()`, `max_retries=2`); `bind=True`
    for a body that needs its own id (`self.request.id`) as an effect key's owner, or reports
    its progress (`self.report_progress`); `cancellable_while_running=True` for such a body
    that an operator may stop while it runs (LedgerTask.cancellable_while_running)."""
    options.update(name=name, base=LedgerTask, queue_name=queue)
    return cast(Declaration, shared_task(**options))


def beat_task(name: str, /, *, queue: str, **options: Any) -> Declaration:
    """Declare one of beat's periodic tasks (settings.JOBS_SCHEDULES): not a ledger job, for
    it carries no state of its own, and whatever it does is done again on its next run."""
    options.update(name=name, queue_name=queue, ignore_result=True)
    return cast(Declaration, shared_task(**options))

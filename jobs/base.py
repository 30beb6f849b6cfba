"""The base every ledger job is declared on: one retry policy, ledger bookkeeping, dead letters.

A task declares what is transient for it (`autoretry_for`) and, if it must, its own budget
(`max_retries`); everything else comes from here and from settings:

- transient errors retry with exponential backoff, capped, with "equal jitter": each delay is
  drawn from the upper half of its exponential step, so delays never shrink from one attempt
  to the next, and a third party's Retry-After is honoured;
- every start, retry, success and failure is written to the job's ledger row;
- a permanent error, or a spent budget, moves the job to `dead` and records a dead letter
  through the `dead_letter` queue.
"""

import random
from datetime import datetime, timedelta

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from jobs import ledger
from jobs.errors import TransientError

MAX_ERROR_LENGTH = 2_000
MAX_TRACEBACK_LENGTH = 20_000


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]


class LedgerTask(Task):
    abstract = True

    # A database that is briefly unreachable and a job that ran past its soft time limit are
    # transient too; an IntegrityError (also a DatabaseError) is not, so it is not listed.
    autoretry_for = (TransientError, OperationalError, InterfaceError, SoftTimeLimitExceeded)
    retry_backoff = settings.JOBS_RETRY_BACKOFF_SECONDS
    retry_backoff_max = settings.JOBS_RETRY_BACKOFF_MAX_SECONDS
    retry_jitter = False  # our own equal jitter is applied in retry()
    max_retries = settings.JOBS_MAX_RETRIES
    acks_late = True
    reject_on_worker_lost = True

    def __call__(self, *args, **kwargs):
        if not ledger.claim(self.request.id):
            return {"skipped": "job already finished"}
        return super().__call__(*args, **kwargs)

    def retry(
        self,
        args=None,
        kwargs=None,
        exc=None,
        throw=True,
        eta=None,
        countdown=None,
        max_retries=None,
        **options,
    ):
        if countdown is not None:
            countdown = countdown / 2 + random.uniform(0, countdown / 2)  # noqa: S311
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            countdown = max(countdown or 0, min(retry_after, self.retry_backoff_max))
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

    def on_retry(self, exc, task_id, args, kwargs, einfo):
        when = getattr(einfo.exception, "when", None)
        if isinstance(when, int | float):
            when = timezone.now() + timedelta(seconds=when)
        ledger.mark_retrying(
            task_id,
            error=describe(exc),
            next_attempt_at=when if isinstance(when, datetime) else None,
        )

    def on_success(self, retval, task_id, args, kwargs):
        ledger.mark_succeeded(task_id)

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        job = ledger.mark_dead(task_id, error=describe(exc))
        if job is None or self.name == "jobs.record_dead_letter":
            return
        # Imported here: the dead-letter task module imports this one.
        from jobs.dispatch import enqueue
        from jobs.tasks.dead_letters import record_dead_letter

        enqueue(
            record_dead_letter,
            concerning=job.order or job.customer,
            job_id=str(job.pk),
            error=describe(exc),
            traceback=str(einfo.traceback)[-MAX_TRACEBACK_LENGTH:],
        )

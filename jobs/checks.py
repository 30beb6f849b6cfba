"""System checks: every job's queue is one the workers take, and the clocks of leases,
heartbeats, shutdown and the broker agree with one another."""

from typing import Any

from celery import current_app
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from jobs.dispatch import is_ledger_task
from jobs.shutdown import HAND_BACK_MARGIN_SECONDS


@register()
def job_queues(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """A job's decorator names its queue, and settings.QUEUES lists every queue the workers
    take (settings.JOBS_WORKER_QUEUES): a job on any other queue would never run."""
    errors: list[CheckMessage] = []
    for name, task in sorted(current_app.tasks.items()):
        queue = getattr(task, "queue_name", None)
        if queue is None and is_ledger_task(task):
            errors.append(
                Error(
                    f"The job {name} names no queue.",
                    hint='Say which in its decorator: @job(..., queue="default").',
                    id="jobs.E001",
                )
            )
        elif queue is not None and queue not in settings.QUEUES:
            errors.append(
                Error(
                    f"The job {name} goes to the queue {queue!r}, which no worker takes.",
                    hint="Add the queue to settings.QUEUES and JOBS_WORKER_QUEUES.",
                    id="jobs.E002",
                )
            )
    return errors


@register()
def recovery_clocks(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """The clocks of leases, heartbeats, shutdown and the broker agree with one another."""
    warnings: list[CheckMessage] = []
    if settings.JOBS_LEASE_SECONDS < 3 * settings.JOBS_HEARTBEAT_SECONDS:
        warnings.append(
            Warning(
                "A job's lease is shorter than three heartbeats.",
                hint="A busy worker could miss a renewal and lose a live job to another "
                "worker. Raise JOBS_LEASE_SECONDS or lower JOBS_HEARTBEAT_SECONDS.",
                id="jobs.W001",
            )
        )
    if settings.BROKER_VISIBILITY_TIMEOUT_SECONDS <= settings.CELERY_TASK_TIME_LIMIT:
        warnings.append(
            Warning(
                "The broker's visibility timeout is not longer than a job's hard time limit.",
                hint="Redis would hand out the message of a job that still runs (the claim drops "
                "it, but each such delivery is wasted). Raise BROKER_VISIBILITY_TIMEOUT_SECONDS.",
                id="jobs.W002",
            )
        )
    longest_call = max(settings.THIRD_PARTY_TIMEOUT_SECONDS, settings.EMAIL_TIMEOUT)
    hand_back_at = settings.CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT - HAND_BACK_MARGIN_SECONDS
    if longest_call >= hand_back_at:
        warnings.append(
            Warning(
                "A third-party or SMTP call may outlast the workers' soft shutdown.",
                hint="A job on a thread hands itself back between calls only (jobs.shutdown): "
                "keep THIRD_PARTY_TIMEOUT_SECONDS and EMAIL_TIMEOUT below "
                "WORKER_SOFT_SHUTDOWN_TIMEOUT less a second, or a deploy waits for the call.",
                id="jobs.W003",
            )
        )
    return warnings

"""System checks: every job's queue is one the workers take, and the settings that keep
Redis from running a job twice agree with one another."""

from typing import Any

from celery import current_app
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from jobs.dispatch import is_ledger_task


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
def broker_timeouts(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    visibility = settings.BROKER_VISIBILITY_TIMEOUT_SECONDS
    warnings: list[CheckMessage] = []
    # A worker holds a retry's message, unacknowledged, for its whole countdown.
    if visibility <= settings.JOBS_RETRY_BACKOFF_MAX_SECONDS:
        warnings.append(
            Warning(
                "The longest retry backoff is not below the broker's visibility timeout.",
                hint="Redis would deliver the waiting retry a second time (celery#2481). "
                "Lower JOBS_RETRY_BACKOFF_MAX_SECONDS or raise BROKER_VISIBILITY_TIMEOUT_SECONDS.",
                id="jobs.W001",
            )
        )
    if visibility <= settings.JOBS_LEASE_SECONDS:
        warnings.append(
            Warning(
                "A job's lease (its longest run) is not below the broker's visibility timeout.",
                hint="Redis would deliver a running job again while it runs. "
                "Raise BROKER_VISIBILITY_TIMEOUT_SECONDS.",
                id="jobs.W002",
            )
        )
    if settings.JOBS_LEASE_SECONDS <= settings.CELERY_TASK_TIME_LIMIT:
        warnings.append(
            Warning(
                "A job's lease is not longer than its hard time limit.",
                hint="A second delivery could start while the first still runs. "
                "Raise JOBS_LEASE_SECONDS above JOBS_TIME_LIMIT.",
                id="jobs.W003",
            )
        )
    return warnings

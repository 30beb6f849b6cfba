"""Purging old rows in batches: the ledger and Celery's results grow with every job."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Model, QuerySet
from django.utils import timezone
from django_celery_results.models import TaskResult

from jobs import schedules
from jobs.models import Job

BATCH = 1_000
MAX_BATCHES_PER_RUN = 50  # at most 50,000 rows a run (per state): the rest waits an hour
# A skip or a decline is a run that ended well, as a success is (before issue 12 they were
# `succeeded`, and purged): kept for good, every order's skipped text message or declined
# charge would grow the ledger without bound.
PURGED_STATES = (Job.State.SUCCEEDED, Job.State.SKIPPED, Job.State.DECLINED)


def purge_old_records() -> dict[str, int]:
    """Delete finished jobs and task results older than JOBS_RETENTION_DAYS.

    A batch at a time, never one unbounded DELETE, each batch the oldest rows in the order of
    an index: finished jobs by (state, finished_at), the ledger's job_finished, and task results
    by date_done. A batch reads its thousand index entries and stops, whatever the size of the
    table (in the model's default order, by creation time, it read every succeeded row for
    each batch). Only jobs whose run ended well go (succeeded, skipped, declined): dead ones
    keep their dead letter, cancelled ones the audit of what operators did with them. The job
    counts (jobs.models.JobCount) follow the DELETE.
    """
    cutoff = timezone.now() - timedelta(days=settings.JOBS_RETENTION_DAYS)
    # One state at a time: each batch pick stays one range of the (state, finished_at) index.
    purged_jobs = sum(
        _delete_in_batches(
            Job,
            Job.objects.filter(state=state, finished_at__lt=cutoff).order_by(
                "state", "finished_at"
            ),
        )
        for state in PURGED_STATES
    )
    old_results = TaskResult.objects.filter(date_done__lt=cutoff).order_by("date_done")
    return {
        "jobs": purged_jobs,
        "task_results": _delete_in_batches(TaskResult, old_results),
        # A few rows a day (jobs.schedules.claim_run): one DELETE.
        "schedule_runs": schedules.forget_old_runs(days=settings.JOBS_RETENTION_DAYS),
    }


def _delete_in_batches(model: type[Model], rows: QuerySet[Any]) -> int:
    deleted = 0
    for _ in range(MAX_BATCHES_PER_RUN):
        ids = list(rows.values_list("pk", flat=True)[:BATCH])
        if not ids:
            break
        model._default_manager.filter(pk__in=ids).delete()
        deleted += len(ids)
    return deleted

"""Purging old rows in batches: the ledger and Celery's results grow with every job."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Model, QuerySet
from django.utils import timezone
from django_celery_results.models import TaskResult

from jobs.models import Job

BATCH = 1_000
MAX_BATCHES_PER_RUN = 50  # at most 50,000 rows a run: the rest waits for the next hour


def purge_old_records() -> dict[str, int]:
    """Delete finished jobs and task results older than JOBS_RETENTION_DAYS.

    Rows are picked through an index (finished_at, date_done) a batch at a time, never with
    one unbounded DELETE. Only succeeded jobs go: dead ones keep their dead letter and the
    audit of what operators did with it.
    """
    cutoff = timezone.now() - timedelta(days=settings.JOBS_RETENTION_DAYS)
    old_jobs = Job.objects.filter(finished_at__lt=cutoff, state=Job.State.SUCCEEDED)
    return {
        "jobs": _delete_in_batches(Job, old_jobs),
        "task_results": _delete_in_batches(
            TaskResult, TaskResult.objects.filter(date_done__lt=cutoff)
        ),
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

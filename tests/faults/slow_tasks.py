"""A job for the deploy tests, loaded into their workers with `--include`: it computes
(sleeps) without a safe point, as a CPU-bound job does, on its first run only."""

import time

from celery import Task

from jobs.base import job
from jobs.models import Job


@job("tests.compute_on_first_run", queue="media", bind=True)
def compute_on_first_run(self: Task, *, seconds: float) -> dict[str, int]:
    attempt = Job.objects.get(pk=str(self.request.id)).attempts
    if attempt == 1:
        time.sleep(seconds)
    return {"attempt": attempt}

"""Jobs for the fault tests, loaded into their workers with `--include`. They compute (sleep)
without a safe point, as a CPU-bound job does, on their first run only."""

import time

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from jobs.base import job
from jobs.models import Job

# Far longer than any time limit or any wait of the tests: a hang, as far as they can tell.
HANG_SECONDS = 3600


@job("tests.compute_on_first_run", queue="media", bind=True)
def compute_on_first_run(self: Task, *, seconds: float) -> dict[str, int]:
    attempt = Job.objects.get(pk=str(self.request.id)).attempts
    if attempt == 1:
        time.sleep(seconds)
    return {"attempt": attempt}


@job("tests.hang_on_first_run", queue="media", bind=True)
def hang_on_first_run(self: Task, *, swallow_soft_limit: bool) -> dict[str, int]:
    """Hang on the first run. With `swallow_soft_limit` it goes on past the soft time limit, as
    a job does whose broad `except` catches it, or that is stuck in C code that never returns
    to the interpreter to raise it."""
    attempt = Job.objects.get(pk=str(self.request.id)).attempts
    if attempt == 1:
        deadline = time.monotonic() + HANG_SECONDS
        while time.monotonic() < deadline:
            try:
                time.sleep(max(0.0, deadline - time.monotonic()))
            except SoftTimeLimitExceeded:
                if not swallow_soft_limit:
                    raise
    return {"attempt": attempt}

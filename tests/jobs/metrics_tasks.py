"""Jobs whose end the metrics tests know in advance, loaded into their workers with
`--include`: one that succeeds, one that fails once (a transient error) and then succeeds,
one that fails for good."""

from celery import Task

from jobs.base import job
from jobs.errors import PermanentError, TransientError
from jobs.models import Job


@job("tests.metrics_succeed", queue="default")
def succeed() -> str:
    return "done"


@job("tests.metrics_fail_once", queue="default", bind=True)
def fail_once(self: Task) -> str:
    if Job.objects.get(pk=str(self.request.id)).attempts == 1:
        raise TransientError("the third party timed out, this once")
    return "done on the second run"


@job("tests.metrics_fail_for_good", queue="default")
def fail_for_good() -> str:
    raise PermanentError("the record is gone")

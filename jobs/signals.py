"""What the job machinery tells the rest of the project, without knowing who listens."""

import logging

from django.dispatch import Signal

from jobs import metrics
from jobs.models import Job

logger = logging.getLogger(__name__)

# A job reached a final state (succeeded, dead, or cancelled by an operator), sent once per
# time it does, by the process that recorded it, after the ledger's write committed. Keyword
# arguments: job_id, name, outcome ("succeeded", "dead" or "cancelled"), concerning_type_id
# and concerning_id (what the job is about: jobs.dispatch.new_job's `concerning`; None and ""
# if nothing). Sent with sender=Job. A receiver runs on the job's path: it must be quick (no
# more than a query).
job_finished = Signal()


def finished(
    *,
    job_id: str,
    name: str,
    outcome: str,
    concerning_type_id: int | None,
    concerning_id: str,
) -> None:
    """Count the job's end and tell the receivers. A receiver that fails is logged: the job's
    outcome stands whatever a watcher of it does."""
    metrics.JOBS_FINISHED.labels(job=name, outcome=outcome).inc()
    for receiver, result in job_finished.send_robust(
        sender=Job,
        job_id=job_id,
        name=name,
        outcome=outcome,
        concerning_type_id=concerning_type_id,
        concerning_id=concerning_id,
    ):
        if isinstance(result, Exception):
            logger.error(
                "job_finished receiver %r failed for job %s",
                receiver,
                job_id,
                exc_info=(type(result), result, result.__traceback__),
            )

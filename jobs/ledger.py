"""State changes of ledger rows, as workers run jobs.

Each change is one conditional UPDATE, so two deliveries of the same job cannot both move it
to a final state, and a job that already succeeded is never run again.
"""

from datetime import datetime

from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from jobs.models import Job

State = Job.State
RUNNABLE_STATES = (State.QUEUED, State.RETRYING, State.RUNNING)


def claim(job_id: str) -> bool:
    """Mark the job running and count the attempt. False if it must not run (already final).

    RUNNING is claimable on purpose: a job whose worker died mid-run is redelivered and must
    run again. Work that is not in the ledger (beat's housekeeping) always runs.
    """
    claimed = Job.objects.filter(pk=job_id, state__in=RUNNABLE_STATES).update(
        state=State.RUNNING,
        attempts=F("attempts") + 1,
        started_at=timezone.now(),
        next_attempt_at=None,
    )
    return bool(claimed) or not Job.objects.filter(pk=job_id).exists()


def mark_succeeded(job_id: str) -> None:
    Job.objects.filter(pk=job_id, state=State.RUNNING).update(
        state=State.SUCCEEDED, finished_at=timezone.now(), last_error=""
    )


def mark_retrying(job_id: str, *, error: str, next_attempt_at: datetime | None) -> None:
    now = timezone.now()
    Job.objects.filter(pk=job_id, state=State.RUNNING).update(
        state=State.RETRYING,
        last_error=error,
        next_attempt_at=next_attempt_at,
        first_failed_at=Coalesce("first_failed_at", now),
    )


def mark_dead(job_id: str, *, error: str) -> Job | None:
    """Move a failed job to DEAD; returns it, or None if it was not running (nothing to do)."""
    now = timezone.now()
    moved = Job.objects.filter(pk=job_id, state=State.RUNNING).update(
        state=State.DEAD,
        last_error=error,
        finished_at=now,
        next_attempt_at=None,
        first_failed_at=Coalesce("first_failed_at", now),
    )
    return Job.objects.get(pk=job_id) if moved else None

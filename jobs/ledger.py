"""State changes of ledger rows as workers run jobs.

Redis delivers at least once: a message can arrive twice (a redelivery after a worker died,
after the visibility timeout, a relay that published again, an operator's requeue). The
ledger turns that into "at most one run at a time, and never again once finished":

- A run *claims* its job with one conditional UPDATE, fenced by the message's Celery retry
  count, and holds it for a lease (the hard time limit plus a margin).
- A second delivery of the current message while the lease holds is BUSY: it is set aside
  and looked at again when the lease ends (it never runs beside the first).
- A delivery after the lease ended means the run that held it died: it is a *lost run*; the
  job runs again, and after JOBS_MAX_LOST_RUNS lost runs it is given up as dead instead of
  looping (a job that kills its worker would otherwise be redelivered forever).
- A message older than the job's current one (a smaller retry count) is STALE and dropped.
- Every later state change is fenced by the same retry count, so a late hook of an old run
  cannot overwrite a newer one.
"""

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from jobs.models import Job

State = Job.State


class Outcome(enum.Enum):
    RUN = "run"
    FINISHED = "finished"  # succeeded or dead already: nothing to do
    STALE = "stale"  # an older message than the job's current one
    BUSY = "busy"  # another run holds the lease now
    GAVE_UP = "gave_up"  # too many lost runs: now dead


@dataclass(frozen=True)
class Claim:
    outcome: Outcome
    busy_for_seconds: float = 0.0


def claim(job_id: str, *, retries: int, lease_seconds: float, max_lost_runs: int) -> Claim:
    """Try to take the job for a run of the message with this retry count."""
    now = timezone.now()
    run = {
        "state": State.RUNNING,
        "attempts": F("attempts") + 1,
        "retries": retries,
        "started_at": now,
        "lease_until": now + timedelta(seconds=lease_seconds),
        "next_attempt_at": None,
    }
    # The first run, or the run of a retry that the previous run published (a higher count).
    current = Q(state=State.QUEUED) | Q(
        state__in=(State.RETRYING, State.RUNNING), retries__lt=retries
    )
    if Job.objects.filter(current, pk=job_id).update(**run):
        return Claim(Outcome.RUN)

    job = Job.objects.filter(pk=job_id).only("state", "retries", "lease_until", "lost_runs").first()
    if job is None:
        return Claim(Outcome.RUN)  # not a ledger job (beat's housekeeping)
    if job.state in Job.FINAL_STATES:
        return Claim(Outcome.FINISHED)
    if job.state != State.RUNNING or job.retries != retries:
        return Claim(Outcome.STALE)
    if job.lease_until and job.lease_until > now:
        return Claim(Outcome.BUSY, (job.lease_until - now).total_seconds())

    # The lease ran out and the job is still running: the run that held it died.
    held_by_the_dead = Job.objects.filter(
        pk=job_id, state=State.RUNNING, retries=retries, lease_until=job.lease_until
    )
    lost_runs = job.lost_runs + 1
    if lost_runs >= max_lost_runs:
        gave_up = held_by_the_dead.update(
            state=State.DEAD,
            lost_runs=lost_runs,
            finished_at=now,
            lease_until=None,
            last_error=f"WorkerLost: the worker running this job died {lost_runs} times",
            first_failed_at=Coalesce("first_failed_at", now),
        )
        return Claim(Outcome.GAVE_UP if gave_up else Outcome.STALE)
    if held_by_the_dead.update(**run, lost_runs=lost_runs):
        return Claim(Outcome.RUN)
    return Claim(Outcome.STALE)  # another delivery took it over first


def _held(job_id: str, retries: int):
    return Job.objects.filter(pk=job_id, state=State.RUNNING, retries=retries)


def mark_succeeded(job_id: str, *, retries: int) -> None:
    _held(job_id, retries).update(
        state=State.SUCCEEDED, finished_at=timezone.now(), last_error="", lease_until=None
    )


def mark_retrying(
    job_id: str, *, retries: int, error: str, next_attempt_at: datetime | None
) -> None:
    now = timezone.now()
    _held(job_id, retries).update(
        state=State.RETRYING,
        last_error=error,
        next_attempt_at=next_attempt_at,
        lease_until=None,
        first_failed_at=Coalesce("first_failed_at", now),
    )


def mark_dead(job_id: str, *, retries: int, error: str) -> Job | None:
    """Move a failed job to DEAD; returns it, or None if this run no longer held it."""
    now = timezone.now()
    moved = _held(job_id, retries).update(
        state=State.DEAD,
        last_error=error,
        finished_at=now,
        next_attempt_at=None,
        lease_until=None,
        first_failed_at=Coalesce("first_failed_at", now),
    )
    return Job.objects.get(pk=job_id) if moved else None

"""Dead letters: the record of a job that failed for good."""

from django.utils import timezone

from jobs import metrics
from jobs.models import DeadLetter, Job


def record(*, job_id: str, error: str, traceback: str) -> DeadLetter:
    """One letter per job, however often this runs (and however often the job dies)."""
    job = Job.objects.get(pk=job_id)
    failure = {
        "error": error,
        "traceback": traceback,
        "attempts": job.attempts,
        "failed_at": job.finished_at or timezone.now(),
    }
    letter, created = DeadLetter.objects.get_or_create(
        job=job,
        defaults={**failure, "first_failed_at": job.first_failed_at or failure["failed_at"]},
    )
    opened = created
    if not created and letter.status == DeadLetter.Status.REQUEUED:
        # Requeued by an operator and dead again: the same letter opens again, with its history.
        opened = bool(
            DeadLetter.objects.filter(pk=letter.pk, status=DeadLetter.Status.REQUEUED).update(
                **failure, status=DeadLetter.Status.OPEN, resolved_by=None, resolved_at=None
            )
        )
        letter.refresh_from_db()
    if opened:
        metrics.DEAD_LETTERS.labels(job=job.name).inc()
    return letter

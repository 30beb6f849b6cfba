"""Dead letters: the record of a job that failed for good."""

from django.utils import timezone

from jobs.models import DeadLetter, Job


def record(*, job_id: str, error: str, traceback: str) -> DeadLetter:
    """One letter per job, however often this runs."""
    job = Job.objects.get(pk=job_id)
    letter, _ = DeadLetter.objects.get_or_create(
        job=job,
        defaults={
            "error": error,
            "traceback": traceback,
            "attempts": job.attempts,
            "first_failed_at": job.first_failed_at or job.finished_at or timezone.now(),
            "failed_at": job.finished_at or timezone.now(),
        },
    )
    return letter

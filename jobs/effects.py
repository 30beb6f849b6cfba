"""Effect keys: the record that a side effect happened, so a repeated job does not repeat it."""

from django.db import IntegrityError, transaction

from jobs.models import Effect


def already_done(key: str) -> bool:
    return Effect.objects.filter(key=key).exists()


def record(key: str, *, job_id: str | None = None) -> bool:
    """Record the effect; False if it was recorded already (by another delivery of the job)."""
    try:
        with transaction.atomic():
            Effect.objects.create(key=key, job_id=job_id)
    except IntegrityError:
        return False
    return True

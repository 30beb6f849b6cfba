"""Effect keys: reserve before performing a side effect, mark done after.

    with effects.once("welcome-email:42", job_id=job_id) as go:
        if go:
            send_the_email()

`once` yields False when the effect is done already; raises TransientError (retry later) while
another run holds the reservation; yields True otherwise, and marks the effect done when the
block ends without an error. If the block fails, the reservation is released.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs.errors import TransientError
from jobs.models import Effect
from jobs.shutdown import checkpoint


def already_done(key: str) -> bool:
    return Effect.objects.filter(key=key, done_at__isnull=False).exists()


def _reserve(key: str, *, job_id: str | None) -> bool:
    now = timezone.now()
    until = now + timedelta(seconds=settings.JOBS_LEASE_SECONDS)
    try:
        with transaction.atomic():
            Effect.objects.create(key=key, job_id=job_id, reserved_until=until)
        return True
    except IntegrityError:
        pass
    effect = Effect.objects.get(key=key)
    if effect.done_at is not None:
        return False
    if effect.reserved_until and effect.reserved_until > now:
        wait = (effect.reserved_until - now).total_seconds()
        raise TransientError(f"effect {key} is being performed by another run", retry_after=wait)
    # The run that reserved it died before marking it done: take the reservation over.
    taken = Effect.objects.filter(
        pk=effect.pk, done_at__isnull=True, reserved_until=effect.reserved_until
    ).update(reserved_until=until, job_id=job_id)
    if not taken:
        raise TransientError(f"effect {key} was just taken over by another run", retry_after=1)
    return True


@contextmanager
def once(key: str, *, job_id: str | None = None) -> Iterator[bool]:
    checkpoint()  # a safe point: a stopping worker hands the job back before the effect
    if already_done(key) or not _reserve(key, job_id=job_id):
        yield False
        return
    try:
        yield True
    except BaseException:
        Effect.objects.filter(key=key, done_at__isnull=True).update(reserved_until=None)
        raise
    Effect.objects.filter(key=key).update(done_at=timezone.now(), reserved_until=None)

from celery import shared_task

from jobs.base import LedgerTask
from shop import avatars


# Nothing to retry: an image that cannot be read now will not be readable later.
@shared_task(bind=True, base=LedgerTask, name="jobs.make_avatar_thumbnails", autoretry_for=())
def make_avatar_thumbnails(self, *, customer_id: int) -> dict:
    thumbnails = avatars.make_thumbnails(customer_id=customer_id, job_id=self.request.id)
    return {"thumbnails": thumbnails}

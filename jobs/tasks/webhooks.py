from celery import shared_task

from jobs.base import LedgerTask
from webhooks import services


@shared_task(base=LedgerTask, name="jobs.deliver_webhook")
def deliver_webhook(*, delivery_id: str) -> dict:
    return {"status_code": services.deliver(delivery_id=delivery_id)}

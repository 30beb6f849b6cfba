from celery import shared_task

from jobs.base import LedgerTask
from shop import emails


@shared_task(bind=True, base=LedgerTask, name="jobs.send_welcome_email")
def send_welcome_email(self, *, customer_id: int) -> dict:
    return {"sent": emails.send_welcome_email(customer_id=customer_id, job_id=self.request.id)}


@shared_task(bind=True, base=LedgerTask, name="jobs.send_order_confirmation")
def send_order_confirmation(self, *, order_id: int) -> dict:
    return {"sent": emails.send_order_confirmation(order_id=order_id, job_id=self.request.id)}


@shared_task(bind=True, base=LedgerTask, name="jobs.send_review_reminder")
def send_review_reminder(self, *, order_id: int) -> dict:
    return {"sent": emails.send_review_reminder(order_id=order_id, job_id=self.request.id)}

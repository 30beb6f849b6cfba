from celery import shared_task

from jobs.base import LedgerTask
from shop import integrations


@shared_task(base=LedgerTask, name="jobs.charge_payment")
def charge_payment(*, order_id: int) -> dict:
    return {"status": integrations.charge_order(order_id=order_id)}

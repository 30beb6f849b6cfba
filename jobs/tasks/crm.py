from celery import shared_task

from jobs.base import LedgerTask
from shop import integrations

# The CRM's API allows a few calls a second; the limit applies per worker process.
CRM_RATE_LIMIT = "10/s"


@shared_task(base=LedgerTask, name="jobs.sync_crm_contact", rate_limit=CRM_RATE_LIMIT)
def sync_crm_contact(*, customer_id: int) -> dict:
    integrations.sync_customer_to_crm(customer_id=customer_id)
    return {"synced": True}


@shared_task(base=LedgerTask, name="jobs.sync_crm_deal", rate_limit=CRM_RATE_LIMIT)
def sync_crm_deal(*, order_id: int) -> dict:
    integrations.sync_order_to_crm(order_id=order_id)
    return {"synced": True}

"""CRM syncs. The CRM allows settings.CRM_RATE_LIMIT calls, counted across all workers by
the client (jobs.clients.rate_limits); these jobs have their own queue and worker, whose
threads wait there for their turn."""

from celery import shared_task

from jobs.base import LedgerTask
from shop import integrations


@shared_task(base=LedgerTask, name="jobs.sync_crm_contact")
def sync_crm_contact(*, customer_id: int) -> dict:
    integrations.sync_customer_to_crm(customer_id=customer_id)
    return {"synced": True}


@shared_task(base=LedgerTask, name="jobs.sync_crm_deal")
def sync_crm_deal(*, order_id: int) -> dict:
    integrations.sync_order_to_crm(order_id=order_id)
    return {"synced": True}

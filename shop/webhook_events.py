"""The order events the shop sends to webhook endpoints (settings.WEBHOOK_EVENTS), and what
each carries."""

from jobs.models import Job
from shop.models import Order
from webhooks import services as webhooks


def order_event_jobs(event: str, *, order: Order) -> list[Job]:
    """Record the event's deliveries in the caller's transaction; their unsaved jobs, for
    `jobs.dispatch.enqueue_all` in the same transaction."""
    return webhooks.event_jobs(event, payload=order_payload(order), subject=order)


def order_payload(order: Order) -> dict[str, object]:
    return {
        "order_id": order.pk,
        "status": order.status,
        "total": str(order.total),
        "currency": order.currency,
    }

"""The tasks of bench.common_way: the app's services, called the common way."""

from typing import Any

from django.conf import settings

from bench.common_way import app
from jobs.errors import Ended, TransientError
from shop import emails, integrations
from shop.models import Customer, Order
from shop.webhook_events import order_payload
from webhooks import services as webhooks

transient: dict[str, Any] = {
    "autoretry_for": (TransientError,),
    "retry_backoff": True,
    "max_retries": 5,
}


@app.task(name="common.noop")
def noop(**kwargs) -> None:
    """Does nothing; its result is stored all the same (section 2: the machinery alone)."""


@app.task(name="common.send_welcome_email", **transient)
def send_welcome_email(customer_id: int) -> bool:
    return emails.send_welcome_email(customer_id=customer_id)


@app.task(name="common.track_analytics_event", **transient)
def track_analytics_event(event_id: str, name: str, properties: dict) -> None:
    integrations.track_event(event_id=event_id, name=name, properties=properties)


@app.task(name="common.sync_crm_contact", **transient)
def sync_crm_contact(customer_id: int) -> None:
    integrations.sync_customer_to_crm(customer_id=customer_id)


@app.task(name="common.charge_payment", **transient)
def charge_payment(order_id: int) -> str:
    # Plain Celery has no state for a business "no": a decline is a result here, as it was.
    try:
        return integrations.charge_order(order_id=order_id)
    except Ended as ended:
        return ended.state


@app.task(name="common.sync_crm_deal", **transient)
def sync_crm_deal(order_id: int) -> None:
    integrations.sync_order_to_crm(order_id=order_id)


@app.task(name="common.deliver_webhook", **transient)
def deliver_webhook(delivery_id: str) -> int | None:
    return webhooks.deliver(delivery_id=delivery_id)


@app.task(name="common.send_review_reminder", **transient)
def send_review_reminder(order_id: int) -> bool:
    try:
        return emails.send_review_reminder(order_id=order_id)
    except Ended:
        return False  # the order was not paid: nothing to send


def after_signup(customer: Customer) -> None:
    send_welcome_email.delay(customer.pk)
    track_analytics_event.delay(
        f"signed_up:{customer.pk}", "signed_up", {"customer_id": customer.pk}
    )
    sync_crm_contact.delay(customer.pk)


def after_order(order: Order) -> None:
    charge_payment.delay(order.pk)
    properties = {"order_id": order.pk, "total": str(order.total)}
    track_analytics_event.delay(f"order_placed:{order.pk}", "order_placed", properties)
    sync_crm_deal.delay(order.pk)
    deliveries = webhooks.record_deliveries(
        "order.placed", payload=order_payload(order), subject=order
    )
    for delivery in deliveries:
        deliver_webhook.delay(str(delivery.pk))
    send_review_reminder.apply_async((order.pk,), countdown=settings.REVIEW_REMINDER_DELAY_SECONDS)

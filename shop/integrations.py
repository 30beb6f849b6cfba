"""What the jobs do with the third parties: charge, sync to the CRM, report to analytics.

Every call carries a key that the receiver deduplicates on, so a job that runs twice has one
effect: the payment's Idempotency-Key, the CRM's natural key (PUT), the analytics event id.
"""

from django.db import transaction

from jobs.dispatch import enqueue_all, new_job
from jobs.errors import Decline, PermanentError, Skip
from shop import services
from shop.clients import analytics, crm, payments
from shop.models import Customer, Order, Payment
from shop.webhook_events import order_event_jobs


def charge_order(*, order_id: int) -> str:
    """Charge the order once; on success mark it paid and record its confirmation email, on
    a decline mark it failed, give its stock back, and end the job `declined` with the
    gateway's reason (jobs.errors.Decline), after the commit."""
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        raise PermanentError(f"order {order_id} is gone")
    if order.status in Order.PAID_STATUSES:
        return order.status
    # A failed order is asked again: a run that ended before the ledger heard of its decline
    # gets the gateway's same answer to the same key, and so the same reason.
    if order.status not in (Order.Status.PENDING_PAYMENT, Order.Status.PAYMENT_FAILED):
        raise Skip(f"the order is {order.get_status_display()}, so it is not charged")

    outcome = payments.charge(
        amount=order.total,
        currency=order.currency,
        reference=f"order-{order.pk}",
        idempotency_key=f"order-{order.pk}-charge",
        source=order.payment_token or payments.DEFAULT_SOURCE,
    )
    with transaction.atomic():
        claimed = Order.objects.filter(pk=order.pk, status=Order.Status.PENDING_PAYMENT)
        if outcome.charge_id is None:
            if claimed.update(status=Order.Status.PAYMENT_FAILED):
                order.status = Order.Status.PAYMENT_FAILED
                # Its reservation ends with it: else every declined card holds stock for good.
                services.release_stock(order=order)
                enqueue_all(order_event_jobs("order.payment_failed", order=order))
        elif claimed.update(status=Order.Status.PAID):
            Payment.objects.create(
                order=order,
                gateway_charge_id=outcome.charge_id,
                amount=order.total,
                currency=order.currency,
            )
            order.status = Order.Status.PAID
            enqueue_all(
                [
                    new_job("jobs.send_order_confirmation", concerning=order, order_id=order.pk),
                    new_job("jobs.make_invoice", concerning=order, order_id=order.pk),
                    *order_event_jobs("order.paid", order=order),
                ]
            )
    if outcome.charge_id is None:
        # After the commit: raised inside the transaction, it would undo the decline's writes.
        raise Decline(outcome.declined_reason)
    return Order.Status.PAID


def sync_customer_to_crm(*, customer_id: int) -> None:
    customer = Customer.objects.select_related("user").filter(pk=customer_id).first()
    if customer is None:
        raise PermanentError(f"customer {customer_id} is gone")
    crm.upsert_contact(
        email=customer.email,
        data={"name": customer.name, "email": customer.email, "customer_id": customer.pk},
    )


def sync_order_to_crm(*, order_id: int) -> None:
    order = Order.objects.select_related("customer__user").filter(pk=order_id).first()
    if order is None:
        raise PermanentError(f"order {order_id} is gone")
    crm.upsert_deal(
        deal_key=f"order-{order.pk}",
        data={
            "contact_email": order.customer.email,
            "amount": str(order.total),
            "currency": order.currency,
            "status": order.status,
        },
    )


def track_event(*, event_id: str, name: str, properties: dict) -> None:
    analytics.send_event(event_id=event_id, name=name, properties=properties)

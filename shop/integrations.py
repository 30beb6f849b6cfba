"""What the jobs do with the third parties: charge, sync to the CRM, report to analytics.

Every call carries a key that the receiver deduplicates on, so a job that runs twice has one
effect: the payment's Idempotency-Key, the CRM's natural key (PUT), the analytics event id.
"""

from typing import NoReturn

from django.db import transaction

from jobs.dispatch import enqueue_all, new_job
from jobs.errors import Decline, PermanentError, Skip
from jobs.models import Job
from jobs.operations import cancel_waiting
from shop import services
from shop.clients import analytics, crm, payments
from shop.models import Customer, Order, Payment, Refund
from shop.webhook_events import order_event_jobs


def charge_order(*, order_id: int) -> str:
    """Charge the order once; on success mark it paid and record its confirmation email
    and invoice; on a decline mark it failed, give its stock back, cancel what no longer
    applies, and end the job `declined` with the gateway's reason (jobs.errors.Decline), after
    the commit. A cancelled order is not charged (Skip); a charge that comes back for an order
    cancelled meanwhile is refunded."""
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        raise PermanentError(f"order {order_id} is gone")
    if order.status == Order.Status.CANCELLED:
        _settle_cancelled(order)  # raises Skip: a cancelled order is never charged now
    elif order.status in Order.PAID_STATUSES:
        return order.status
    # A failed order is asked again: a run that ended before the ledger heard of its decline
    # gets the gateway's same answer to the same key, and so the same reason.

    refunded = False
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
                cancel_waiting(
                    concerning=order,
                    names=services.JOBS_VOID_WHEN_DECLINED,
                    reason="payment declined",
                )
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
        else:
            refunded = _refund_if_cancelled(order, charge_id=outcome.charge_id)
    if outcome.charge_id is None:
        # After the commit: raised inside the transaction, it would undo the decline's writes.
        raise Decline(outcome.declined_reason)
    if refunded:
        raise Skip("order cancelled while it was being charged: the charge is refunded")
    return Order.Status.PAID


def _settle_cancelled(order: Order) -> NoReturn:
    """The charge job of an order cancelled before it was paid: charge nothing. If an earlier
    run may have charged the card before the cancel (a timeout after the gateway charged, a
    worker lost mid-call), ask the gateway whether it did, by the order's reference; never by
    charging again with the key, which would charge a card the earlier run never did (a
    processing error, a 5xx, charges nothing). What it did charge is refunded."""
    if _charge_in_doubt(order):
        charge_id = payments.find_charge(reference=f"order-{order.pk}")
        if charge_id is not None:
            with transaction.atomic():
                refunded = _refund_if_cancelled(order, charge_id=charge_id)
            if refunded:
                raise Skip("order cancelled after its card was charged: the charge is refunded")
    raise Skip("order cancelled")


def _charge_in_doubt(order: Order) -> bool:
    """Whether an earlier run of the order's charge job started, and so may have charged the
    card (a timeout after the gateway charged, a worker lost mid-call) before the order was
    cancelled."""
    return (
        Job.objects.filter(
            name="jobs.charge_payment", concerning_id=order.pk, attempts__gt=1
        ).exists()
        and not Payment.objects.filter(order=order).exists()
    )


def _refund_if_cancelled(order: Order, *, charge_id: str) -> bool:
    """The gateway charged an order that is no longer pending. If it was cancelled meanwhile
    (the customer cancelled while the charge was at the gateway) and no payment was recorded,
    record this one and its refund job, in the caller's transaction: the money goes back."""
    cancelled = Order.objects.filter(pk=order.pk, status=Order.Status.CANCELLED).exists()
    if not cancelled or Payment.objects.filter(order=order).exists():
        return False
    Payment.objects.create(
        order=order, gateway_charge_id=charge_id, amount=order.total, currency=order.currency
    )
    enqueue_all([new_job("jobs.refund_payment", concerning=order, order_id=order.pk)])
    return True


def refund_order(*, order_id: int) -> str:
    """Give the order's payment back at the gateway, once, and record the refund; its id.

    Keyed by the order: a run that dies after the gateway refunded and before the refund was
    recorded is run again, and the gateway answers the same key with the first refund."""
    payment = Payment.objects.filter(order_id=order_id).first()
    if payment is None:
        raise PermanentError(f"order {order_id} has no payment to refund")
    outcome = payments.refund(
        charge_id=payment.gateway_charge_id, idempotency_key=f"order-{order_id}-refund"
    )
    refund, _ = Refund.objects.get_or_create(
        payment=payment,
        defaults={
            "gateway_refund_id": outcome.refund_id,
            "amount": payment.amount,
            "currency": payment.currency,
        },
    )
    return refund.gateway_refund_id


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

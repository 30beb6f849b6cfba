"""Cancelling an order: until it ships, once, in one transaction with everything that follows
from it (stock back, the waiting reminder cancelled, refund, CRM, analytics and webhook jobs);
and the charge job's side of it (a cancelled order is not charged; a charge that lands on a
cancelled order is refunded; a declined card cancels the reminder).

The gateway's answer is replaced where the shop calls it (shop.clients.payments.charge): these
tests are about what the shop records; tests/integration/test_cancel_order.py runs it all on
real workers against the sandbox gateway.
"""

import threading
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from jobs.errors import Decline, Skip
from jobs.models import Job
from shop import integrations, services
from shop.clients import payments
from shop.models import Order, Payment, Product
from tests.factories import CustomerFactory, ProductFactory
from webhooks.models import WebhookDelivery, WebhookEndpoint

REMINDER = "jobs.send_review_reminder"


def stock(sku: str = "MUG-001") -> int:
    return Product.objects.get(sku=sku).stock


def place(quantity: int = 2) -> Order:
    """An order of `quantity` mugs, with its jobs, as a customer places it (5 in stock)."""
    ProductFactory(sku="MUG-001", stock=5)
    return services.place_order(
        customer=CustomerFactory.create(), items=[{"sku": "MUG-001", "quantity": quantity}]
    ).order


def mark_paid(order: Order) -> None:
    """What a successful charge wrote (shop.integrations.charge_order)."""
    Order.objects.filter(pk=order.pk).update(status=Order.Status.PAID)
    Payment.objects.create(
        order=order, gateway_charge_id="ch_1", amount=order.total, currency="EUR"
    )


def reminder(order: Order) -> Job:
    return Job.objects.get(name=REMINDER, concerning_id=order.pk)


def jobs_recorded_since(before: set) -> list[str]:
    return sorted(Job.objects.exclude(pk__in=before).values_list("name", flat=True))


@pytest.mark.django_db
def test_a_paid_order_is_cancelled_with_its_stock_its_reminder_and_its_jobs():
    order = place()
    mark_paid(order)
    WebhookEndpoint.objects.create(url="https://93.184.216.34/hook", events=["order.cancelled"])
    before = set(Job.objects.values_list("pk", flat=True))
    assert stock() == 3

    result = services.cancel_order(order_id=order.pk, by=order.customer.user)

    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    assert order.cancelled_at is not None
    assert (order.cancelled_by, order.cancel_reason) == (
        order.customer.user,
        "cancelled by the customer",
    )
    assert stock() == 5
    assert (reminder(order).state, reminder(order).outcome_reason) == (
        "cancelled",
        "order cancelled",
    )
    assert [job.name for job in result.cancelled_jobs] == [REMINDER]
    assert jobs_recorded_since(before) == [
        "jobs.deliver_webhook",
        "jobs.refund_payment",
        "jobs.sync_crm_deal",
        "jobs.track_analytics_event",
    ]
    refund = Job.objects.get(name="jobs.refund_payment")
    assert (refund.queue, refund.state, refund.kwargs) == (
        "critical",
        "queued",
        {"order_id": order.pk},
    )
    assert refund.concerning == order
    [delivery] = WebhookDelivery.objects.filter(event="order.cancelled")
    assert delivery.payload["status"] == "cancelled"
    # The answer shows the order's jobs as they are now: the reminder cancelled, the refund.
    states = {job.name: job.state for job in result.order.jobs.all()}
    assert states[REMINDER] == "cancelled"
    assert states["jobs.refund_payment"] == "queued"


@pytest.mark.django_db
def test_a_pending_order_is_cancelled_without_a_refund():
    order = place()

    services.cancel_order(order_id=order.pk, by=order.customer.user)

    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLED
    assert stock() == 5
    assert reminder(order).state == "cancelled"
    assert not Job.objects.filter(name="jobs.refund_payment").exists()
    assert Job.objects.filter(name="jobs.sync_crm_deal").count() == 2  # placed, cancelled


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "message"),
    [
        (Order.Status.SHIPPED, "has shipped"),
        (Order.Status.PAYMENT_FAILED, "its payment failed"),
        (Order.Status.CANCELLED, "is cancelled already"),
    ],
)
def test_an_order_that_cannot_be_cancelled_is_refused_and_nothing_is_written(status, message):
    order = place()
    Order.objects.filter(pk=order.pk).update(status=status)
    before = set(Job.objects.values_list("pk", flat=True))

    with pytest.raises(services.OrderNotCancellable, match=message):
        services.cancel_order(order_id=order.pk, by=order.customer.user)

    order.refresh_from_db()
    assert (order.status, order.cancelled_at) == (status, None)
    assert stock() == 3
    assert reminder(order).state == "scheduled"
    assert jobs_recorded_since(before) == []


@pytest.mark.django_db
def test_a_second_cancel_is_refused_and_gives_the_stock_back_once():
    order = place()
    services.cancel_order(order_id=order.pk, by=order.customer.user)
    before = set(Job.objects.values_list("pk", flat=True))

    with pytest.raises(services.OrderNotCancellable, match="cancelled already"):
        services.cancel_order(order_id=order.pk, by=order.customer.user)

    assert stock() == 5
    assert jobs_recorded_since(before) == []


@pytest.mark.django_db
def test_nothing_is_cancelled_unless_its_jobs_are_recorded(monkeypatch):
    """One transaction: a failure after the order's update leaves the order paid, its stock
    reserved, its reminder scheduled, and no job recorded."""
    order = place()
    mark_paid(order)
    before = set(Job.objects.values_list("pk", flat=True))

    def broken(jobs):
        raise RuntimeError("the ledger is unavailable")

    monkeypatch.setattr(services, "enqueue_all", broken)
    with pytest.raises(RuntimeError):
        services.cancel_order(order_id=order.pk, by=order.customer.user)

    order.refresh_from_db()
    assert (order.status, order.cancelled_at) == (Order.Status.PAID, None)
    assert stock() == 3
    assert reminder(order).state == "scheduled"
    assert jobs_recorded_since(before) == []


def test_two_cancels_at_once_cancel_once_and_give_the_stock_back_once(transactional_db):
    order = place()
    mark_paid(order)
    user = order.customer.user
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def cancel():
        try:
            start.wait()
            services.cancel_order(order_id=order.pk, by=user)
            outcomes.append("cancelled")
        except services.OrderNotCancellable:
            outcomes.append("refused")
        except BaseException as exc:
            outcomes.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=cancel) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["cancelled", "refused"]
    assert stock() == 5
    assert Job.objects.filter(name="jobs.refund_payment").count() == 1


# --- the charge job's side --------------------------------------------------------------------


class Gateway:
    """Charges or declines; `meanwhile` runs while the charge is "at the gateway"."""

    def __init__(self, *, declines: bool = False, meanwhile=None, charged: str | None = None):
        self.declines, self.meanwhile, self.asked = declines, meanwhile, 0
        self.charged, self.looked_up = charged, 0

    def find_charge(self, *, reference: str) -> str | None:
        self.looked_up += 1
        return self.charged

    def charge(
        self, *, amount: Decimal, currency: str, reference: str, idempotency_key: str, source: str
    ) -> payments.ChargeOutcome:
        self.asked += 1
        if self.meanwhile is not None:
            self.meanwhile()
        if self.declines:
            return payments.ChargeOutcome(charge_id=None, declined_reason="card declined")
        return payments.ChargeOutcome(charge_id="ch_42")


@pytest.mark.django_db
def test_a_cancelled_order_is_not_charged(monkeypatch):
    order = place()
    services.cancel_order(order_id=order.pk, by=order.customer.user)
    gateway = Gateway()
    monkeypatch.setattr(payments, "charge", gateway.charge)

    with pytest.raises(Skip, match="order cancelled"):
        integrations.charge_order(order_id=order.pk)

    assert gateway.asked == 0
    assert not Payment.objects.exists()


@pytest.mark.django_db
def test_a_charge_that_lands_on_an_order_cancelled_meanwhile_is_refunded(monkeypatch):
    """The customer cancels while the charge is at the gateway: the charge job's move to
    `paid` finds the order cancelled, and records the payment and its refund instead."""
    order = place()
    gateway = Gateway(
        meanwhile=lambda: services.cancel_order(order_id=order.pk, by=order.customer.user)
    )
    monkeypatch.setattr(payments, "charge", gateway.charge)

    with pytest.raises(Skip, match="the charge is refunded"):
        integrations.charge_order(order_id=order.pk)

    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    assert order.payment.gateway_charge_id == "ch_42"
    [refund] = Job.objects.filter(name="jobs.refund_payment")
    assert (refund.state, refund.kwargs) == ("queued", {"order_id": order.pk})
    assert not Job.objects.filter(name="jobs.send_order_confirmation").exists()
    assert stock() == 5  # given back once, by the cancel


@pytest.mark.django_db
def test_a_retried_charge_of_a_cancelled_order_refunds_what_an_earlier_attempt_charged(
    monkeypatch,
):
    """Its first attempt timed out after the gateway charged; the customer cancelled while it
    waited for its retry. The retry looks the charge up by the order's reference (it never
    charges a cancelled order) and refunds it."""
    order = place()
    services.cancel_order(order_id=order.pk, by=order.customer.user)
    Job.objects.filter(name="jobs.charge_payment").update(attempts=2)
    gateway = Gateway(charged="ch_42")
    monkeypatch.setattr(payments, "charge", gateway.charge)
    monkeypatch.setattr(payments, "find_charge", gateway.find_charge)

    with pytest.raises(Skip, match="the charge is refunded"):
        integrations.charge_order(order_id=order.pk)

    assert (gateway.looked_up, gateway.asked) == (1, 0)
    assert Payment.objects.get(order=order).gateway_charge_id == "ch_42"
    assert Job.objects.filter(name="jobs.refund_payment").count() == 1


@pytest.mark.django_db
def test_a_charge_that_finds_the_order_paid_already_refunds_nothing(monkeypatch):
    """A second run of a charge job whose first run paid the order: nothing to refund."""
    order = place()
    mark_paid(order)
    monkeypatch.setattr(payments, "charge", Gateway().charge)

    assert integrations.charge_order(order_id=order.pk) == Order.Status.PAID
    assert not Job.objects.filter(name="jobs.refund_payment").exists()


@pytest.mark.django_db
def test_a_declined_payment_cancels_the_review_reminder(monkeypatch):
    order = place()
    monkeypatch.setattr(payments, "charge", Gateway(declines=True).charge)

    with pytest.raises(Decline):
        integrations.charge_order(order_id=order.pk)

    assert Order.objects.get(pk=order.pk).status == Order.Status.PAYMENT_FAILED
    assert (reminder(order).state, reminder(order).outcome_reason) == (
        "cancelled",
        "payment declined",
    )
    assert stock() == 5


@pytest.mark.django_db
def test_staff_are_recorded_as_who_cancelled():
    order = place()
    staff = get_user_model().objects.create_user(username="s@example.com", is_staff=True)

    services.cancel_order(order_id=order.pk, by=staff, reason="out of stock at the warehouse")

    order.refresh_from_db()
    assert (order.cancelled_by, order.cancel_reason) == (staff, "out of stock at the warehouse")

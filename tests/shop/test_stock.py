"""Stock: an order reserves it, a declined payment gives it back, and no race oversells it.

The gateway's answer is replaced where the shop calls it (shop.clients.payments.charge): these
tests are about what the shop does with a decline, not about the HTTP call.
"""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from jobs.errors import Decline
from shop import integrations, services
from shop.clients import payments
from shop.models import Order, Product
from tests.factories import CustomerFactory, ProductFactory


class Gateway:
    """Declines the first `declines` charges it is asked for and accepts the rest."""

    def __init__(self, *, declines: int) -> None:
        self.declines = declines
        self.asked = 0
        self._lock = threading.Lock()

    def charge(
        self, *, amount: Decimal, currency: str, reference: str, idempotency_key: str, source: str
    ) -> payments.ChargeOutcome:
        with self._lock:
            self.asked += 1
            if self.asked <= self.declines:
                return payments.ChargeOutcome(charge_id=None, declined_reason="card declined")
            return payments.ChargeOutcome(charge_id=f"ch_{self.asked}")


@pytest.fixture
def declining_gateway(monkeypatch) -> Gateway:
    gateway = Gateway(declines=10**6)
    monkeypatch.setattr(payments, "charge", gateway.charge)
    return gateway


def stock(sku: str) -> int:
    return Product.objects.get(sku=sku).stock


@pytest.mark.django_db
def test_a_declined_payment_gives_the_orders_stock_back(declining_gateway):
    ProductFactory(sku="MUG-001", stock=5)
    ProductFactory(sku="TEE-002", stock=3)
    placed = services.place_order(
        customer=CustomerFactory(),
        items=[{"sku": "MUG-001", "quantity": 2}, {"sku": "TEE-002", "quantity": 3}],
    )
    assert (stock("MUG-001"), stock("TEE-002")) == (3, 0)

    # The job ends `declined`, with the gateway's reason, once the decline is committed.
    with pytest.raises(Decline, match="card declined"):
        integrations.charge_order(order_id=placed.order.pk)

    assert Order.objects.get(pk=placed.order.pk).status == Order.Status.PAYMENT_FAILED
    assert (stock("MUG-001"), stock("TEE-002")) == (5, 3)


@pytest.mark.django_db
def test_a_decline_handled_twice_gives_the_stock_back_once(declining_gateway):
    ProductFactory(sku="MUG-001", stock=5)
    placed = services.place_order(
        customer=CustomerFactory(), items=[{"sku": "MUG-001", "quantity": 2}]
    )

    for _ in range(2):  # the job delivered a second time: declined again, released once
        with pytest.raises(Decline):
            integrations.charge_order(order_id=placed.order.pk)

    assert stock("MUG-001") == 5


@pytest.mark.django_db
def test_a_decline_that_cannot_be_recorded_keeps_the_order_and_its_stock_as_they_were(
    declining_gateway, monkeypatch
):
    """The status and the stock change in one transaction: a failure after the release
    (recording the decline's webhooks) undoes both, and the job's retry starts afresh."""
    ProductFactory(sku="MUG-001", stock=5)
    placed = services.place_order(
        customer=CustomerFactory(), items=[{"sku": "MUG-001", "quantity": 2}]
    )

    def broken(jobs):
        raise RuntimeError("the ledger is unavailable")

    monkeypatch.setattr(integrations, "enqueue_all", broken)
    with pytest.raises(RuntimeError):
        integrations.charge_order(order_id=placed.order.pk)

    assert Order.objects.get(pk=placed.order.pk).status == Order.Status.PENDING_PAYMENT
    assert stock("MUG-001") == 3


@pytest.mark.django_db
def test_a_paid_order_keeps_its_stock(monkeypatch):
    monkeypatch.setattr(payments, "charge", Gateway(declines=0).charge)
    ProductFactory(sku="MUG-001", stock=5)
    placed = services.place_order(
        customer=CustomerFactory(), items=[{"sku": "MUG-001", "quantity": 2}]
    )

    assert integrations.charge_order(order_id=placed.order.pk) == Order.Status.PAID
    assert stock("MUG-001") == 3


LAST_ITEMS = 4
BUYERS = 12
DECLINES = 2  # no more than the orders sure to be placed: two of two items take all four


def test_buyers_racing_for_the_last_items_with_declines_never_oversell(
    transactional_db, monkeypatch
):
    """Twelve buyers at once for the last four items, each placing an order of one or two
    and paying at once; the gateway declines the first two charges. The stock given back
    by a decline may go to a buyer who comes later, never to two."""
    gateway = Gateway(declines=DECLINES)
    monkeypatch.setattr(payments, "charge", gateway.charge)
    ProductFactory(sku="LAST-001", stock=LAST_ITEMS)
    customers = [CustomerFactory() for _ in range(BUYERS)]
    start = threading.Barrier(BUYERS)
    outcomes: list[str] = []
    failures: list[BaseException] = []

    def buy(customer, quantity):
        try:
            start.wait()
            try:
                placed = services.place_order(
                    customer=customer, items=[{"sku": "LAST-001", "quantity": quantity}]
                )
            except services.OrderRejected:
                outcomes.append("rejected")
                return
            try:
                outcomes.append(integrations.charge_order(order_id=placed.order.pk))
            except Decline:
                outcomes.append("declined")
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=buy, args=(customer, 1 + n % 2))
        for n, customer in enumerate(customers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not failures
    assert len(outcomes) == BUYERS
    orders = Order.objects.prefetch_related("lines")
    quantity = {order.pk: sum(line.quantity for line in order.lines.all()) for order in orders}
    paid = [order for order in orders if order.status == Order.Status.PAID]
    declined = [order for order in orders if order.status == Order.Status.PAYMENT_FAILED]
    assert len(declined) == DECLINES
    assert len(paid) + len(declined) == len(orders) == BUYERS - outcomes.count("rejected")
    assert sum(quantity[order.pk] for order in paid) <= LAST_ITEMS
    assert stock("LAST-001") == LAST_ITEMS - sum(quantity[order.pk] for order in paid)

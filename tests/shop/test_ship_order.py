"""Shipping an order: only a paid one, once, with its SMS job in the same transaction; the
SMS goes to the customer's mobile number, if there is one; a shipped order is still a sale."""

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone

from jobs.errors import PermanentError, Skip
from jobs.models import Job
from shop import emails, reports, services
from shop.models import Order
from tests.factories import OrderFactory
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    return get_user_model().objects.create_user(
        username="dispatch@example.com", email="dispatch@example.com", is_staff=True
    )


def test_a_paid_order_ships_and_records_one_sms_job(staff):
    order = OrderFactory(status=Order.Status.PAID)

    result = services.ship_order(order_id=order.pk, by=staff)

    order.refresh_from_db()
    assert order.status == Order.Status.SHIPPED
    assert order.shipped_at is not None
    assert order.shipped_by == staff
    [job] = Job.objects.all()
    assert result.jobs == [job]
    assert (job.name, job.queue, job.state) == (
        "jobs.send_shipping_notification",
        "default",
        "queued",
    )
    assert job.kwargs == {"order_id": order.pk}
    assert job.concerning == order


def test_the_order_is_not_shipped_unless_its_sms_job_is_recorded(staff, monkeypatch):
    """One transaction: when recording the job fails, the order stays paid."""
    order = OrderFactory(status=Order.Status.PAID)

    def broken(jobs):
        raise RuntimeError("the ledger is unavailable")

    monkeypatch.setattr(services, "enqueue_all", broken)
    with pytest.raises(RuntimeError):
        services.ship_order(order_id=order.pk, by=staff)

    order.refresh_from_db()
    assert (order.status, order.shipped_at) == (Order.Status.PAID, None)


@pytest.mark.parametrize("status", [Order.Status.PENDING_PAYMENT, Order.Status.PAYMENT_FAILED])
def test_an_unpaid_order_is_refused_and_nothing_is_written(staff, status):
    order = OrderFactory(status=status)

    with pytest.raises(services.OrderNotShippable, match="is not paid") as refused:
        services.ship_order(order_id=order.pk, by=staff)

    assert refused.value.status == status
    order.refresh_from_db()
    assert (order.status, order.shipped_at, order.shipped_by) == (status, None, None)
    assert not Job.objects.exists()


def test_shipping_twice_is_refused_and_records_one_sms_job(staff):
    order = OrderFactory(status=Order.Status.PAID)
    services.ship_order(order_id=order.pk, by=staff)
    shipped_at = Order.objects.get(pk=order.pk).shipped_at

    with pytest.raises(services.OrderNotShippable, match="shipped already"):
        services.ship_order(order_id=order.pk, by=staff)

    assert Order.objects.get(pk=order.pk).shipped_at == shipped_at
    assert Job.objects.filter(name="jobs.send_shipping_notification").count() == 1


def test_an_unknown_order_does_not_exist(staff):
    with pytest.raises(Order.DoesNotExist):
        services.ship_order(order_id=404, by=staff)


@pytest.fixture
def texts(monkeypatch):
    """What the SMS client was asked to send (the sandbox provider itself: tests/sandbox)."""
    sent = []
    monkeypatch.setattr(services.sms, "send_sms", lambda **message: sent.append(message))
    return sent


def test_the_sms_goes_to_the_customers_number_with_the_orders_key(texts):
    order = OrderFactory(status=Order.Status.SHIPPED, customer__phone="+4915112345678")

    assert services.send_shipping_notification(order_id=order.pk) is True
    assert texts == [
        {
            "to": "+4915112345678",
            "body": f"Your order #{order.pk} has shipped and is on its way.",
            "idempotency_key": f"order-{order.pk}-shipped-sms",
        }
    ]


def test_no_sms_without_a_mobile_number(texts):
    order = OrderFactory(status=Order.Status.SHIPPED, customer__phone="")

    with pytest.raises(Skip, match="no mobile number"):
        services.send_shipping_notification(order_id=order.pk)
    assert texts == []


def test_the_sms_of_an_order_that_is_gone_is_given_up(texts):
    with pytest.raises(PermanentError):
        services.send_shipping_notification(order_id=404)
    assert texts == []


def this_week() -> str:
    year, week, _ = timezone.localdate().isocalendar()
    return f"{year}-W{week:02d}"


def test_a_shipped_order_still_counts_as_a_sale_and_gets_its_review_reminder():
    order = OrderFactory(status=Order.Status.SHIPPED, shipped_at=timezone.now())

    [row] = reports.sales_rows(this_week())
    assert row["quantity"] == 1
    assert row["revenue"] == "10.00"
    assert emails.send_review_reminder(order_id=order.pk) is True
    assert [message.subject for message in mail.outbox] == [f"How was order #{order.pk}?"]


def test_an_unpaid_order_is_neither_a_sale_nor_reviewed():
    order = OrderFactory(status=Order.Status.PAYMENT_FAILED)

    assert reports.sales_rows(this_week()) == []
    with pytest.raises(Skip, match="the order was not paid"):
        emails.send_review_reminder(order_id=order.pk)
    assert mail.outbox == []


def test_shipping_sends_the_order_shipped_webhook_to_the_endpoints_that_want_it(staff):
    order = OrderFactory(status=Order.Status.PAID)
    WebhookEndpoint.objects.create(url="https://93.184.216.34/hook", events=["order.shipped"])
    WebhookEndpoint.objects.create(url="https://93.184.216.35/hook", events=["order.paid"])

    result = services.ship_order(order_id=order.pk, by=staff)

    [delivery] = WebhookDelivery.objects.all()
    assert delivery.event == "order.shipped"
    assert delivery.payload["status"] == "shipped"
    assert delivery.endpoint.url == "https://93.184.216.34/hook"
    assert sorted(job.name for job in result.jobs) == [
        "jobs.deliver_webhook",
        "jobs.send_shipping_notification",
    ]

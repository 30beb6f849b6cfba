"""Shipping an order: what a shipped order still is (a sale, reviewable)."""

import pytest
from django.core import mail
from django.utils import timezone

from shop import emails, reports
from shop.models import Order
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


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
    assert emails.send_review_reminder(order_id=order.pk) is False
    assert mail.outbox == []

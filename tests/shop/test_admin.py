"""The Order admin's "Mark shipped" action: ships the paid orders, counts the others."""

import pytest
from django.contrib.auth import get_user_model

from jobs.models import Job
from shop.models import Order
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def test_mark_shipped_ships_the_paid_orders_and_says_how_many_were_skipped(client):
    client.force_login(
        get_user_model().objects.create_superuser(username="admin", password="an-admin-password")
    )
    paid, other_paid = OrderFactory.create_batch(2, status=Order.Status.PAID)
    unpaid = OrderFactory(status=Order.Status.PENDING_PAYMENT)
    shipped = OrderFactory(status=Order.Status.SHIPPED)

    response = client.post(
        "/admin/shop/order/",
        {
            "action": "mark_shipped",
            "_selected_action": [paid.pk, other_paid.pk, unpaid.pk, shipped.pk],
        },
        follow=True,
    )

    assert response.status_code == 200
    assert [str(message) for message in response.context["messages"]] == [
        "2 orders shipped; each customer with a mobile number gets a text message.",
        "2 skipped, left as they were: 1 not paid, 1 shipped already.",
    ]
    statuses = dict(Order.objects.values_list("pk", "status"))
    assert statuses == {
        paid.pk: "shipped",
        other_paid.pk: "shipped",
        unpaid.pk: "pending_payment",
        shipped.pk: "shipped",
    }
    assert sorted(Job.objects.values_list("kwargs__order_id", flat=True)) == sorted(
        [paid.pk, other_paid.pk]
    )


def test_staff_cancel_orders_from_the_admin_and_see_which_were_refused(client):
    client.force_login(
        get_user_model().objects.create_superuser(username="admin", password="an-admin-password")
    )
    paid = OrderFactory(status=Order.Status.PAID)
    shipped = OrderFactory(status=Order.Status.SHIPPED)

    response = client.post(
        "/admin/shop/order/",
        {"action": "cancel_orders", "_selected_action": [paid.pk, shipped.pk]},
        follow=True,
    )

    assert [str(message) for message in response.context["messages"]] == [
        "1 order cancelled; paid ones are refunded in the background.",
        "1 not cancellable, left as they were: 1 shipped.",
    ]
    paid.refresh_from_db()
    assert (paid.status, paid.cancel_reason) == ("cancelled", "cancelled by staff")
    assert paid.cancelled_by.username == "admin"

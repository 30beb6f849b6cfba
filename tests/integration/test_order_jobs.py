"""Orders, end to end: payment exactly once, confirmation email, paid; idempotent requests."""

import pytest
from django_celery_results.models import TaskResult

from jobs.models import Job
from sandbox.mailbox import duplicates_suppressed
from sandbox.models import Charge, ReceivedRequest
from shop.models import Order
from stack.waiting import wait_until
from tests.factories import ProductFactory, customer_with_token

pytestmark = pytest.mark.integration


def test_an_order_is_charged_once_confirmed_by_email_and_paid(celery_worker, api_client, mailbox):
    customer, token = customer_with_token()
    ProductFactory(sku="MUG-001", price="14.00", stock=10)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    response = api_client.post(
        "/api/orders", {"items": [{"sku": "MUG-001", "quantity": 2}]}, format="json"
    )
    assert response.status_code == 201, response.content
    order_id = response.json()["order"]["id"]

    def paid_and_confirmed():
        order = api_client.get(f"/api/orders/{order_id}").json()
        confirmation = [j for j in order["jobs"] if j["name"] == "jobs.send_order_confirmation"]
        return (
            order["order"]["status"] == "paid"
            and confirmation
            and (confirmation[0]["state"] == "succeeded")
        )

    wait_until(paid_and_confirmed, message="the order to be paid and confirmed")

    assert Charge.objects.filter(reference=f"order-{order_id}").count() == 1
    assert str(Charge.objects.get().amount) == "28.00"
    assert ReceivedRequest.objects.filter(service="payments").count() == 1
    confirmations = [m for m in mailbox() if f"Order #{order_id}" in m.subject]
    assert len(confirmations) == 1
    assert confirmations[0].to == customer.email
    assert duplicates_suppressed() == 0  # the mailbox files a resent Message-ID aside
    assert Order.objects.get(pk=order_id).payment.gateway_charge_id.startswith("ch_")
    # The review reminder waits in the database for its due time, not on the broker.
    reminder = Order.objects.get(pk=order_id).jobs.get(name="jobs.send_review_reminder")
    assert reminder.state == "scheduled"
    assert reminder.eta is not None
    # The ledger is the jobs' result store: no TaskResult row repeats a success.
    assert not TaskResult.objects.filter(status="SUCCESS").exists()


def test_the_same_idempotency_key_twice_creates_one_order(celery_worker, api_client):
    _, token = customer_with_token()
    ProductFactory(sku="TEE-002", stock=10)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_IDEMPOTENCY_KEY="checkout-42")
    body = {"items": [{"sku": "TEE-002", "quantity": 1}]}

    first = api_client.post("/api/orders", body, format="json")
    second = api_client.post("/api/orders", body, format="json")

    assert first.status_code == second.status_code == 201
    assert first.json()["order"]["id"] == second.json()["order"]["id"]
    assert Order.objects.count() == 1
    order_id = first.json()["order"]["id"]
    wait_until(lambda: Order.objects.get(pk=order_id).status == "paid", message="payment")
    assert Charge.objects.count() == 1
    assert Job.objects.filter(name="jobs.charge_payment").count() == 1

    other_body = api_client.post(
        "/api/orders", {"items": [{"sku": "TEE-002", "quantity": 3}]}, format="json"
    )
    assert other_body.status_code == 422
    assert Order.objects.count() == 1

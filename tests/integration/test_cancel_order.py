"""Cancelling an order, end to end on real workers against the sandbox third parties over
HTTP: the refund at the gateway once (even when the refund job runs twice), the CRM deal and
the `order.cancelled` webhook told, stock back; and a charge that is at the gateway when the
customer cancels is refunded by the charge job itself."""

import time

import pytest
from django.db.models import F

from jobs.models import Job
from sandbox.models import Charge, CrmRecord, ReceivedRequest, ReceivedWebhook, WebhookInbox
from sandbox.models import Refund as GatewayRefund
from sandbox.switches import set_switch
from shop.models import Order, Product, Refund
from stack.waiting import wait_until
from tests.factories import ProductFactory, customer_with_token
from tests.helpers import place_order
from webhooks.models import WebhookDelivery, WebhookEndpoint, new_secret

pytestmark = pytest.mark.integration


@pytest.fixture
def inbox(transactional_db, live_server, settings):
    box = WebhookInbox.objects.create(name="test", secret=new_secret())
    WebhookEndpoint.objects.create(
        url=f"{settings.SANDBOX_BASE_URL}/webhooks/test", secret=box.secret
    )
    return box


@pytest.fixture
def customer_api(api_client):
    _, token = customer_with_token()
    ProductFactory(sku="MUG-001", price="14.00", stock=5)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api_client


def cancel(api, order_id: int) -> dict:
    response = api.post(f"/api/orders/{order_id}/cancel")
    assert response.status_code == 200, response.content
    return response.json()


def job(order_id: int, name: str) -> Job:
    return Job.objects.get(name=name, concerning_id=order_id)


def finished(order_id: int, name: str) -> bool:
    return Job.objects.filter(name=name, concerning_id=order_id).exists() and (
        job(order_id, name).is_final
    )


def deal_status(order_id: int) -> str | None:
    deal = CrmRecord.objects.filter(kind="deal", external_key=f"order-{order_id}").first()
    return deal.data.get("status") if deal else None


def test_a_paid_order_cancelled_is_refunded_once_restocked_and_told(
    celery_worker, customer_api, inbox
):
    order_id = place_order(customer_api)
    wait_until(lambda: Order.objects.get(pk=order_id).status == "paid", message="payment")

    answer = cancel(customer_api, order_id)

    assert answer["order"]["status"] == "cancelled"
    assert Product.objects.get(sku="MUG-001").stock == 5
    wait_until(lambda: finished(order_id, "jobs.refund_payment"), message="the refund")
    wait_until(
        lambda: (
            ReceivedWebhook.objects.filter(event="order.cancelled").exists()
            and deal_status(order_id) == "cancelled"
        ),
        message="the webhook and the CRM deal",
    )
    refund_job = job(order_id, "jobs.refund_payment")
    assert (refund_job.state, refund_job.queue) == ("succeeded", "critical")
    [charge] = Charge.objects.all()
    [at_gateway] = GatewayRefund.objects.all()
    assert (at_gateway.charge_id, at_gateway.amount) == (charge.pk, charge.amount)
    assert at_gateway.idempotency_key == f"order-{order_id}-refund"
    refund = Refund.objects.get(payment__order_id=order_id)
    assert refund.gateway_refund_id == f"re_{at_gateway.pk}"
    assert str(refund.amount) == "28.00"
    webhook = ReceivedWebhook.objects.get(event="order.cancelled")
    assert webhook.payload["data"]["status"] == "cancelled"
    reminder = job(order_id, "jobs.send_review_reminder")
    assert (reminder.state, reminder.outcome_reason) == ("cancelled", "order cancelled")
    # The customer sees it all among the order's jobs.
    jobs = {
        j["name"]: j["state"] for j in customer_api.get(f"/api/orders/{order_id}").json()["jobs"]
    }
    assert jobs["jobs.refund_payment"] == "succeeded"
    assert jobs["jobs.send_review_reminder"] == "cancelled"


def test_a_refund_job_that_runs_twice_refunds_once(celery_worker, customer_api):
    """A second run of the refund job, as after a run lost between the gateway's answer and
    the ledger's record: the gateway answers its key with the first refund."""
    order_id = place_order(customer_api)
    wait_until(lambda: Order.objects.get(pk=order_id).status == "paid", message="payment")
    cancel(customer_api, order_id)
    wait_until(lambda: finished(order_id, "jobs.refund_payment"), message="the refund")
    first = Refund.objects.get(payment__order_id=order_id).gateway_refund_id

    # Delivered again: a new epoch (older messages stale), unpublished, so the relay sends it.
    Job.objects.filter(name="jobs.refund_payment", concerning_id=order_id).update(
        state=Job.State.QUEUED, epoch=F("epoch") + 1, published_at=None, finished_at=None
    )
    wait_until(
        lambda: (
            job(order_id, "jobs.refund_payment").state == "succeeded"
            and job(order_id, "jobs.refund_payment").attempts == 2
        ),
        message="the second run",
    )

    calls = ReceivedRequest.objects.filter(service="payments", path__endswith="/refunds")
    assert sorted(call.status_code for call in calls) == [200, 201]
    assert {call.idempotency_key for call in calls} == {f"order-{order_id}-refund"}
    assert GatewayRefund.objects.count() == 1
    assert Refund.objects.get(payment__order_id=order_id).gateway_refund_id == first


def test_a_charge_at_the_gateway_when_the_order_is_cancelled_is_refunded(
    celery_worker, customer_api
):
    """The customer cancels while the gateway takes its time over the charge: the charge
    succeeds, finds the order cancelled instead of pending, and records the payment and its
    refund; the charge job ends `skipped`, saying so."""
    set_switch("payments", latency_ms=2500)
    order_id = place_order(customer_api)
    wait_until(
        lambda: job(order_id, "jobs.charge_payment").state == "running", message="the charge"
    )
    time.sleep(0.5)  # the request is at the gateway, which answers 2.5 s after it came

    answer = cancel(customer_api, order_id)
    assert answer["order"]["status"] == "cancelled"
    assert not Charge.objects.exists()  # not charged yet: the gateway is still at it

    # The charge records the refund job in its transaction and ends its own job after that commit:
    # the refund can be done before the charge's job says so.
    wait_until(
        lambda: (
            finished(order_id, "jobs.refund_payment") and finished(order_id, "jobs.charge_payment")
        ),
        message="the refund and the charge's end",
        timeout=30,
    )
    charge_job = job(order_id, "jobs.charge_payment")
    assert charge_job.state == "skipped"
    assert "the charge is refunded" in charge_job.outcome_reason
    assert job(order_id, "jobs.refund_payment").state == "succeeded"
    [charge] = Charge.objects.all()
    assert GatewayRefund.objects.get().charge_id == charge.pk
    order = Order.objects.get(pk=order_id)
    assert order.status == "cancelled"
    assert order.payment.refund.gateway_refund_id.startswith("re_")
    assert Product.objects.get(sku="MUG-001").stock == 5  # given back once
    assert not Job.objects.filter(name="jobs.send_order_confirmation").exists()
    assert not WebhookDelivery.objects.filter(event="order.paid").exists()


def test_an_order_cancelled_while_its_charge_waits_to_retry_is_never_charged(
    celery_worker, customer_api, settings
):
    # The card whose first charge meets the gateway's processing error (a 5xx, nothing
    # charged): the charge job waits for its retry. The customer cancels meanwhile.
    settings.JOBS_RETRY_BACKOFF_SECONDS = 3
    order_id = place_order(customer_api, card_number="4000 0000 0000 0119")
    wait_until(
        lambda: job(order_id, "jobs.charge_payment").state == "retrying",
        message="the charge to meet the processing error",
    )

    cancel(customer_api, order_id)
    wait_until(lambda: finished(order_id, "jobs.charge_payment"), message="the charge's retry")

    charge = job(order_id, "jobs.charge_payment")
    assert (charge.state, charge.outcome_reason) == ("skipped", "order cancelled")
    # Asked, not charged: the gateway holds no charge for the order, so nothing to refund.
    assert not Charge.objects.filter(reference=f"order-{order_id}").exists()
    assert not Job.objects.filter(name="jobs.refund_payment").exists()

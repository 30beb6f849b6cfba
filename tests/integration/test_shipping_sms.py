"""Shipping, end to end: staff ship a paid order over the API, a real worker texts the
customer through the sandbox SMS provider over HTTP, once, through the provider's failures."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from jobs.models import DeadLetter, Job
from sandbox.models import ReceivedRequest, SmsMessage
from sandbox.switches import set_switch
from shop.models import Order
from shop.tokens import issue_token
from stack.waiting import wait_until
from tests.factories import OrderFactory, ProductFactory

pytestmark = pytest.mark.integration

PHONE = "+4915112345678"


@pytest.fixture
def staff_api(transactional_db) -> APIClient:
    staff = get_user_model().objects.create_user(
        username="dispatch@example.com", email="dispatch@example.com", is_staff=True
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(staff)}")
    return client


def ship(staff_api: APIClient, order_id: int) -> str:
    """Ship the order; the id of its SMS job."""
    response = staff_api.post(f"/api/ops/orders/{order_id}/ship")
    assert response.status_code == 200, response.content
    [job] = response.json()["jobs"]
    assert job["name"] == "jobs.send_shipping_notification"
    return job["id"]


def finished(job_id: str) -> bool:
    return Job.objects.get(pk=job_id).is_final


def test_a_customer_who_gave_a_number_is_texted_once_when_the_order_ships(
    celery_worker, api_client, staff_api
):
    ProductFactory(sku="MUG-001", stock=5)
    signup = api_client.post(
        "/api/signup",
        {
            "email": "ada@example.com",
            "name": "Ada",
            "password": "analytical-engine-1843",
            "phone": PHONE,
        },
        format="json",
    )
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {signup.json()['token']}")
    placed = api_client.post(
        "/api/orders", {"items": [{"sku": "MUG-001", "quantity": 1}]}, format="json"
    )
    order_id = placed.json()["order"]["id"]
    wait_until(lambda: Order.objects.get(pk=order_id).status == "paid", message="payment")

    job_id = ship(staff_api, order_id)
    wait_until(lambda: finished(job_id), message="the SMS job to finish")

    assert Job.objects.get(pk=job_id).state == "succeeded"
    [sms] = SmsMessage.objects.all()
    assert sms.to == PHONE
    assert sms.body == f"Your order #{order_id} has shipped and is on its way."
    assert sms.idempotency_key == f"order-{order_id}-shipped-sms"
    assert ReceivedRequest.objects.filter(service="sms").count() == 1
    # The customer sees it among the order's jobs.
    states = {
        job["id"]: job["state"] for job in api_client.get(f"/api/orders/{order_id}").json()["jobs"]
    }
    assert states[job_id] == "succeeded"


def test_the_sms_job_retries_through_two_provider_failures_and_sends_once(celery_worker, staff_api):
    order = OrderFactory(status=Order.Status.PAID, customer__phone=PHONE)
    set_switch("sms", fail_next=2)

    job_id = ship(staff_api, order.pk)
    wait_until(lambda: finished(job_id), message="the SMS job to finish")

    job = Job.objects.get(pk=job_id)
    assert (job.state, job.attempts) == ("succeeded", 3)
    calls = ReceivedRequest.objects.filter(service="sms").order_by("created_at")
    assert [call.status_code for call in calls] == [503, 503, 201]
    assert {call.idempotency_key for call in calls} == {f"order-{order.pk}-shipped-sms"}
    assert SmsMessage.objects.count() == 1
    assert not DeadLetter.objects.exists()


def test_without_a_mobile_number_the_sms_job_is_skipped_and_says_why(celery_worker, staff_api):
    order = OrderFactory(status=Order.Status.PAID, customer__phone="")

    job_id = ship(staff_api, order.pk)
    wait_until(lambda: finished(job_id), message="the SMS job to finish")

    job = Job.objects.get(pk=job_id)
    assert (job.state, job.outcome_reason) == (
        "skipped",
        "no mobile number was given for text messages",
    )
    assert not SmsMessage.objects.exists()
    assert not ReceivedRequest.objects.filter(service="sms").exists()

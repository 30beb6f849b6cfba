"""POST /api/orders/<id>/cancel: the owner's order only, until it ships, once."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from jobs.models import Job
from shop.models import Order, Product
from shop.tokens import issue_token
from tests.factories import JobFactory, ProductFactory, customer_with_token

pytestmark = pytest.mark.django_db


def client_of(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def customer_client():
    _, token = customer_with_token()
    return client_of(token)


@pytest.fixture
def order_id(customer_client) -> int:
    ProductFactory(sku="MUG-001", price="14.00", stock=5)
    placed = customer_client.post(
        "/api/orders", {"items": [{"sku": "MUG-001", "quantity": 2}]}, format="json"
    )
    return placed.json()["order"]["id"]


def test_the_owner_cancels_and_gets_the_order_with_its_jobs(customer_client, order_id):
    response = customer_client.post(f"/api/orders/{order_id}/cancel")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["order"]["id"] == order_id
    assert body["order"]["status"] == "cancelled"
    jobs = {job["name"]: job for job in body["jobs"]}
    assert jobs["jobs.send_review_reminder"]["state"] == "cancelled"
    assert jobs["jobs.send_review_reminder"]["outcome_reason"] == "order cancelled"
    # What GET answers, as it is now.
    assert customer_client.get(f"/api/orders/{order_id}").json() == body
    assert Product.objects.get(sku="MUG-001").stock == 5


def test_a_second_cancel_is_409_already_cancelled_and_records_nothing(customer_client, order_id):
    customer_client.post(f"/api/orders/{order_id}/cancel")
    jobs = Job.objects.count()

    response = customer_client.post(f"/api/orders/{order_id}/cancel")

    assert response.status_code == 409
    assert response.json() == {"detail": f"Order #{order_id} is cancelled already."}
    assert Job.objects.count() == jobs
    assert Product.objects.get(sku="MUG-001").stock == 5


def test_a_shipped_order_is_409(customer_client, order_id):
    Order.objects.filter(pk=order_id).update(status=Order.Status.SHIPPED)

    response = customer_client.post(f"/api/orders/{order_id}/cancel")

    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Order #{order_id} has shipped: it can no longer be cancelled."
    }
    assert Order.objects.get(pk=order_id).status == Order.Status.SHIPPED


def test_someone_elses_order_is_404_staff_included_and_nothing_changes(order_id):
    _, stranger = customer_with_token()
    staff = get_user_model().objects.create_user(username="s@example.com", is_staff=True)

    assert client_of(stranger).post(f"/api/orders/{order_id}/cancel").status_code == 404
    assert client_of(issue_token(staff)).post(f"/api/orders/{order_id}/cancel").status_code == 404
    assert client_of(stranger).post("/api/orders/999999/cancel").status_code == 404
    assert Order.objects.get(pk=order_id).status == Order.Status.PENDING_PAYMENT


def test_cancel_needs_credentials(api_client, order_id):
    assert api_client.post(f"/api/orders/{order_id}/cancel").status_code == 401


def test_the_cancel_answer_lists_no_job_of_the_machinery_as_get_does(customer_client, order_id):
    # A dead letter's record concerns the order it is about: the customer never sees it.
    JobFactory(
        name="jobs.record_dead_letter",
        queue="dead_letter",
        state=Job.State.SUCCEEDED,
        concerning=Order.objects.get(pk=order_id),
        kwargs={},
    )

    response = customer_client.post(f"/api/orders/{order_id}/cancel")

    assert response.status_code == 200, response.content
    names = [job["name"] for job in response.json()["jobs"]]
    assert "jobs.record_dead_letter" not in names
    assert customer_client.get(f"/api/orders/{order_id}").json() == response.json()

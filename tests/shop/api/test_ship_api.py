"""POST /api/ops/orders/<id>/ship: staff ship a paid order once; everyone else is refused."""

import pytest
from django.contrib.auth import get_user_model

from jobs.models import Job
from shop.models import Order
from shop.tokens import issue_token
from tests.factories import OrderFactory, customer_with_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_api(api_client):
    staff = get_user_model().objects.create_user(
        username="dispatch@example.com", email="dispatch@example.com", is_staff=True
    )
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(staff)}")
    return api_client


def ship(client, order_id):
    return client.post(f"/api/ops/orders/{order_id}/ship")


def test_staff_ship_a_paid_order_and_get_it_with_its_sms_job(staff_api):
    order = OrderFactory(status=Order.Status.PAID)

    response = ship(staff_api, order.pk)

    assert response.status_code == 200
    body = response.json()
    assert body["order"]["id"] == order.pk
    assert body["order"]["status"] == "shipped"
    assert body["order"]["shipped_at"] is not None
    [job] = body["jobs"]
    assert (job["name"], job["queue"], job["state"]) == (
        "jobs.send_shipping_notification",
        "default",
        "queued",
    )
    assert str(Order.objects.get(pk=order.pk).jobs.get().pk) == job["id"]


@pytest.mark.parametrize(
    ("status", "detail"),
    [
        (Order.Status.PENDING_PAYMENT, "is not paid"),
        (Order.Status.PAYMENT_FAILED, "is not paid"),
        (Order.Status.SHIPPED, "is shipped already"),
    ],
)
def test_an_order_that_is_not_paid_or_shipped_already_is_409(staff_api, status, detail):
    order = OrderFactory(status=status)

    response = ship(staff_api, order.pk)

    assert response.status_code == 409
    assert detail in response.json()["detail"]
    assert Order.objects.get(pk=order.pk).status == status
    assert not Job.objects.exists()


def test_shipping_twice_answers_409_the_second_time_and_records_one_job(staff_api):
    order = OrderFactory(status=Order.Status.PAID)

    assert [ship(staff_api, order.pk).status_code for _ in range(2)] == [200, 409]
    assert Job.objects.filter(name="jobs.send_shipping_notification").count() == 1


@pytest.mark.parametrize("order_id", [404, 2**70])
def test_an_unknown_order_is_404(staff_api, order_id):
    response = ship(staff_api, order_id)

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_customers_are_403_and_anonymous_callers_401(api_client):
    order = OrderFactory(status=Order.Status.PAID)

    anonymous = ship(api_client, order.pk)
    _, token = customer_with_token()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    customer = ship(api_client, order.pk)

    assert (anonymous.status_code, customer.status_code) == (401, 403)
    assert anonymous.json()["detail"]
    assert customer.json()["detail"]
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert not Job.objects.exists()


def test_the_openapi_schema_documents_shipping(api_client):
    schema = api_client.get("/api/openapi.json").json()

    operation = schema["paths"]["/api/ops/orders/{order_id}/ship"]["post"]
    assert {"200", "401", "403", "404", "409"} <= set(operation["responses"])

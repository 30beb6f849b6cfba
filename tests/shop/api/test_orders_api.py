"""POST/GET /api/orders and /api/jobs: tokens, validation, ownership, idempotency."""

import pytest

from jobs.dispatch import enqueue
from jobs.models import Job
from shop.models import Order, Product
from tests.factories import ProductFactory, customer_with_token
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer_client(api_client):
    customer, token = customer_with_token()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    api_client.customer = customer
    return api_client


@pytest.fixture
def mug():
    return ProductFactory(sku="MUG-001", price="14.00", stock=5)


def order(client, items, **headers):
    return client.post("/api/orders", {"items": items}, format="json", **headers)


def test_an_order_is_created_with_its_jobs_and_stock_is_reserved(customer_client, mug):
    response = order(customer_client, [{"sku": "MUG-001", "quantity": 2}])

    assert response.status_code == 201
    body = response.json()
    assert body["order"]["status"] == "pending_payment"
    assert body["order"]["total"] == "28.00"
    assert body["order"]["items"] == [{"sku": "MUG-001", "quantity": 2, "unit_price": "14.00"}]
    assert {j["name"]: j["state"] for j in body["jobs"]} == {
        "jobs.charge_payment": "queued",
        "jobs.track_analytics_event": "queued",
        "jobs.sync_crm_deal": "queued",
        "jobs.send_review_reminder": "scheduled",
    }
    mug.refresh_from_db()
    assert mug.stock == 3


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([], "items"),
        ([{"sku": "MUG-001", "quantity": 0}], "items[0].quantity"),
        ([{"sku": "MUG-001", "quantity": -3}], "items[0].quantity"),
        ([{"sku": "MUG-001", "quantity": 10**12}], "items[0].quantity"),
        ([{"sku": "MUG-001", "quantity": "two"}], "items[0].quantity"),
        ([{"sku": "MUG-001", "quantity": 1}, {"quantity": 1}], "items[1].sku"),
        ([{"sku": "NOPE-404", "quantity": 1}], "items"),
        ([{"sku": "MUG-001", "quantity": 6}], "items"),  # more than in stock
        ([{"sku": "MUG-001", "quantity": 1}, {"sku": "MUG-001", "quantity": 1}], "items"),
        ("not a list", "items"),
    ],
)
def test_bad_orders_are_400_with_messages_and_write_nothing(customer_client, mug, items, field):
    response = order(customer_client, items)

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == [field]
    assert all(isinstance(message, str) and message for message in errors[field])
    assert not Order.objects.exists()
    assert not Job.objects.exists()
    assert Product.objects.get(sku="MUG-001").stock == 5


@pytest.mark.parametrize("header", [None, "Bearer not-a-real-token", "Token abc", "Bearer "])
def test_orders_need_a_valid_bearer_token(api_client, mug, header):
    customer_with_token()  # a valid token exists: a wrong one must not pass for it
    if header:
        api_client.credentials(HTTP_AUTHORIZATION=header)

    response = order(api_client, [{"sku": "MUG-001", "quantity": 1}])

    assert response.status_code == 401
    assert response.json()["detail"]
    assert not Order.objects.exists()


def test_same_idempotency_key_replays_and_another_body_is_422(customer_client, mug):
    first = order(customer_client, [{"sku": "MUG-001", "quantity": 1}], HTTP_IDEMPOTENCY_KEY="k-1")
    again = order(customer_client, [{"sku": "MUG-001", "quantity": 1}], HTTP_IDEMPOTENCY_KEY="k-1")
    other = order(customer_client, [{"sku": "MUG-001", "quantity": 2}], HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == again.status_code == 201
    assert again.json()["order"]["id"] == first.json()["order"]["id"]
    assert [j["id"] for j in again.json()["jobs"]] == [j["id"] for j in first.json()["jobs"]]
    assert other.status_code == 422
    assert Order.objects.count() == 1
    assert Job.objects.count() == 4
    assert Product.objects.get(sku="MUG-001").stock == 4


def test_a_replay_answers_the_first_requests_jobs_webhook_deliveries_included(customer_client, mug):
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/hooks", events=["order.placed"])
    body = [{"sku": "MUG-001", "quantity": 1}]

    first = order(customer_client, body, HTTP_IDEMPOTENCY_KEY="k-1")
    order_id = first.json()["order"]["id"]
    # A job recorded since, as the charge records the confirmation email: not the first answer's.
    enqueue(
        "jobs.send_order_confirmation", concerning=Order.objects.get(pk=order_id), order_id=order_id
    )
    again = order(customer_client, body, HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == again.status_code == 201
    first_jobs = [(j["id"], j["name"]) for j in first.json()["jobs"]]
    assert "jobs.deliver_webhook" in {name for _, name in first_jobs}
    assert [(j["id"], j["name"]) for j in again.json()["jobs"]] == first_jobs
    # The order's own page and API still show no webhook job: its errors name staff's URL.
    shown = customer_client.get(f"/api/orders/{order_id}").json()["jobs"]
    assert "jobs.deliver_webhook" not in {j["name"] for j in shown}


def test_another_customers_order_and_jobs_are_404(customer_client, api_client, mug):
    order_id = order(customer_client, [{"sku": "MUG-001", "quantity": 1}]).json()["order"]["id"]
    job_id = Order.objects.get(pk=order_id).jobs.first().pk
    # A job about the customer (as a signup records them), not about an order.
    customer = customer_client.customer
    account_job_id = enqueue(
        "jobs.send_welcome_email", concerning=customer, customer_id=customer.pk
    ).pk
    _, stranger_token = customer_with_token()
    stranger = type(api_client)()
    stranger.credentials(HTTP_AUTHORIZATION=f"Bearer {stranger_token}")

    assert stranger.get(f"/api/orders/{order_id}").status_code == 404
    assert stranger.get(f"/api/jobs/{job_id}").status_code == 404
    assert stranger.get(f"/api/jobs/{account_job_id}").status_code == 404
    assert customer_client.get(f"/api/orders/{order_id}").status_code == 200
    assert customer_client.get(f"/api/jobs/{job_id}").json()["job"]["id"] == str(job_id)
    assert customer_client.get(f"/api/jobs/{account_job_id}").status_code == 200


def test_products_lists_prices_as_decimal_strings(api_client, mug):
    response = api_client.get("/api/products")

    assert response.status_code == 200
    assert response.json() == {
        "products": [
            {"sku": "MUG-001", "name": mug.name, "price": "14.00", "currency": "EUR", "stock": 5}
        ]
    }


def test_the_openapi_schema_describes_every_public_endpoint(api_client):
    schema = api_client.get("/api/openapi.json").json()

    assert schema["openapi"].startswith("3.")
    assert {
        "/api/signup",
        "/api/products",
        "/api/orders",
        "/api/orders/{order_id}",
        "/api/jobs/{job_id}",
        "/api/health",
    } <= set(schema["paths"])
    signup_content = schema["paths"]["/api/signup"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(signup_content)


def test_a_job_is_answered_as_drf_would_write_it_from_the_declared_fields():
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from rest_framework import serializers

    from shop.api.serializers import JobOut

    job = Job.objects.create(
        name="jobs.charge_payment",
        queue="critical",
        state="dead",
        attempts=3,
        eta=datetime(2026, 11, 23, 9, 30, tzinfo=UTC),
        last_error="TransientError: the gateway answered 503",
        finished_at=datetime(2026, 11, 23, 9, 31, 2, 123456, tzinfo=UTC),
    )
    staff = SimpleNamespace(user=SimpleNamespace(is_staff=True))
    for instance in (job, Job.objects.create(name="jobs.sync_crm_deal", queue="crm")):
        written_out = JobOut(instance, context={"request": staff}).data
        field_by_field = serializers.ModelSerializer.to_representation(JobOut(), instance)
        assert written_out == field_by_field
    # For anyone but staff the one difference: the error's text is left out.
    assert JobOut(job, context={"request": staff}).data["last_error"] == job.last_error
    assert JobOut(job).data == {**JobOut(job, context={"request": staff}).data, "last_error": ""}


@pytest.mark.parametrize(
    ("card_number", "message"),
    [
        ("4242424242424241", "not valid"),  # one digit off: the Luhn check fails
        ("4242-4242-4242-abcd", "digits only"),
        ("42", "12 to 19 digits"),
        (4242424242424242, "Not a valid string."),  # a JSON number, not a string
    ],
)
def test_a_bad_card_number_is_400_on_its_field_and_writes_nothing(
    customer_client, mug, card_number, message
):
    response = customer_client.post(
        "/api/orders",
        {"items": [{"sku": "MUG-001", "quantity": 1}], "card_number": card_number},
        format="json",
    )

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == ["card_number"]
    assert message in " ".join(errors["card_number"])
    assert not Order.objects.exists()
    assert not Job.objects.exists()
    assert Product.objects.get(sku="MUG-001").stock == 5


def test_the_order_keeps_the_cards_brand_and_last_four_never_its_number(customer_client, mug):
    with_card = customer_client.post(
        "/api/orders",
        {"items": [{"sku": "MUG-001", "quantity": 1}], "card_number": "4000 0000 0000 0002"},
        format="json",
    )
    without = order(customer_client, [{"sku": "MUG-001", "quantity": 1}])

    assert with_card.status_code == without.status_code == 201
    declined = Order.objects.get(pk=with_card.json()["order"]["id"])
    assert (declined.card_brand, declined.card_last4) == ("visa", "0002")
    assert declined.payment_token == "tok_chargeDeclined"
    # Clients that send no card are charged as the test card that succeeds.
    default = Order.objects.get(pk=without.json()["order"]["id"])
    assert (default.card_last4, default.payment_token) == ("4242", "tok_visa")
    stored = [str(value) for value in Order.objects.values_list() for value in value]
    assert not any("4000000000000002" in value for value in stored)


def test_the_same_idempotency_key_with_another_card_is_another_body(customer_client, mug):
    items = [{"sku": "MUG-001", "quantity": 1}]
    first = order(customer_client, items, HTTP_IDEMPOTENCY_KEY="k-card")
    other_card = customer_client.post(
        "/api/orders",
        {"items": items, "card_number": "4000000000000002"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-card",
    )

    default_card = customer_client.post(
        "/api/orders",
        {"items": items, "card_number": "4242 4242 4242 4242"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-card",
    )

    assert first.status_code == 201
    assert other_card.status_code == 422
    # Naming the default card is the same body as naming none: the first order again.
    assert default_card.status_code == 201
    assert default_card.json()["order"]["id"] == first.json()["order"]["id"]
    assert Order.objects.count() == 1

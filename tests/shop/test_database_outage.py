"""The database goes away: the API answers its JSON 503 with Retry-After, pages a plain 503,
and a request whose transaction committed is answered with what it wrote, whatever fails after.

Here every query raises the OperationalError a dropped connection raises;
tests/faults/test_database_outage.py closes the real database under gunicorn.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections

from jobs.models import Job
from shop.models import Customer, Order
from shop.tokens import issue_token
from tests.factories import OrderFactory, ProductFactory, customer_with_token

CONNECTION_LOST = "server closed the connection unexpectedly"


def _refuse(execute, sql, params, many, context):
    raise OperationalError(CONNECTION_LOST)


@contextmanager
def database_down() -> Iterator[None]:
    with connections[DEFAULT_DB_ALIAS].execute_wrapper(_refuse):
        yield


@contextmanager
def database_gone_after_the_next_commit() -> Iterator[None]:
    """The transaction commits; then every query fails, as if the database went away right
    after COMMIT (the publish of the jobs' messages still reaches the broker)."""
    database = connections[DEFAULT_DB_ALIAS]
    commit = database.commit
    gone = False

    def commit_then_go():
        nonlocal gone
        commit()
        gone = True

    def refuse_once_gone(execute, sql, params, many, context):
        if gone:
            raise OperationalError(CONNECTION_LOST)
        return execute(sql, params, many, context)

    with (
        mock.patch.object(database, "commit", commit_then_go),
        database.execute_wrapper(refuse_once_gone),
    ):
        yield
    assert gone, "nothing was committed"


def assert_api_503(response) -> None:
    assert response.status_code == 503, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "The database is unavailable; try again in a few seconds."}
    assert int(response["Retry-After"]) > 0


# --- The database is down -------------------------------------------------------------------


@pytest.fixture
def bearer(db) -> dict[str, str]:
    ProductFactory(sku="MUG-001", stock=10)
    return {"HTTP_AUTHORIZATION": f"Bearer {customer_with_token()[1]}"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/orders", {"items": [{"sku": "MUG-001", "quantity": 1}]}),
        (
            "post",
            "/api/signup",
            {"email": "ada@example.com", "name": "Ada", "password": "analytical-engine-1843"},
        ),
        ("get", "/api/products", None),
        ("get", "/api/orders/1", None),
        ("get", "/api/jobs/6d3c3b8e-6a53-4d5b-9f3a-6f1d8f1e2a10", None),
        ("get", "/api/ops/stats", None),
    ],
)
def test_the_api_answers_a_json_503_with_retry_after(api_client, bearer, method, path, body):
    with database_down():
        response = getattr(api_client, method)(path, body, format="json", **bearer)

    assert_api_503(response)
    assert get_user_model().objects.count() == 1
    assert not Order.objects.exists()
    assert not Job.objects.exists()


def test_health_says_the_database_is_down_in_json(api_client, db):
    with database_down():
        response = api_client.get("/api/health")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json()["database"] == "down"


def test_a_page_answers_a_plain_503_with_retry_after(client, db):
    with database_down():
        response = client.get("/")

    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/plain")
    assert "database is unavailable" in response.content.decode()
    assert int(response["Retry-After"]) > 0


# --- The transaction committed, then the database went away ---------------------------------


@pytest.fixture
def committed_db(transactional_db, empty_queues):
    """Real commits (their on-commit hooks publish to the test broker); no messages left
    behind for later tests."""
    yield
    for queue in empty_queues.keys("*"):
        empty_queues.delete(queue)


def test_a_committed_order_is_answered_201_even_if_every_read_after_the_commit_fails(
    api_client, committed_db
):
    ProductFactory(sku="MUG-001", price="14.00", stock=5)
    ProductFactory(sku="TEE-002", price="20.00", stock=5)
    customer, token = customer_with_token()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    items = [{"sku": "MUG-001", "quantity": 2}, {"sku": "TEE-002", "quantity": 1}]

    with database_gone_after_the_next_commit():
        response = api_client.post("/api/orders", {"items": items}, format="json")

    assert response.status_code == 201, response.content[:300]
    body = response.json()
    order = Order.objects.get(customer=customer)
    assert body["order"]["id"] == order.pk
    assert body["order"]["total"] == str(order.total) == "48.00"
    assert body["order"]["status"] == order.status
    assert sorted(body["order"]["items"], key=lambda item: item["sku"]) == [
        {"sku": line.product.sku, "quantity": line.quantity, "unit_price": str(line.unit_price)}
        for line in order.lines.order_by("product__sku")
    ]
    assert {job["id"] for job in body["jobs"]} == {str(job.pk) for job in order.jobs.all()}


def test_a_committed_signup_is_answered_201_even_if_every_read_after_the_commit_fails(
    api_client, committed_db
):
    signup = {"email": "ada@example.com", "name": "Ada", "password": "analytical-engine-1843"}

    with database_gone_after_the_next_commit():
        response = api_client.post("/api/signup", signup, format="json")

    assert response.status_code == 201, response.content[:300]
    body = response.json()
    customer = Customer.objects.get(user__email="ada@example.com")
    assert body["customer"]["id"] == customer.pk
    assert {job["id"] for job in body["jobs"]} == {str(job.pk) for job in customer.jobs.all()}


def test_a_committed_shipment_is_answered_200_even_if_every_read_after_the_commit_fails(
    api_client, committed_db
):
    staff = get_user_model().objects.create_user(username="dispatch@example.com", is_staff=True)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(staff)}")
    order = OrderFactory(status=Order.Status.PAID)

    with database_gone_after_the_next_commit():
        response = api_client.post(f"/api/ops/orders/{order.pk}/ship")

    assert response.status_code == 200, response.content[:300]
    body = response.json()
    order.refresh_from_db()
    assert (body["order"]["id"], body["order"]["status"]) == (order.pk, "shipped")
    assert body["order"]["items"] == [
        {"sku": line.product.sku, "quantity": line.quantity, "unit_price": str(line.unit_price)}
        for line in order.lines.all()
    ]
    assert {job["id"] for job in body["jobs"]} == {str(job.pk) for job in order.jobs.all()}

"""The benchmarks' variants of the order endpoint do what the comparison says they do: the
same write with no jobs (bare), with every job done before answering (sync), and with one
`.delay()` per job on a Celery app set up the common way."""

import pytest

from jobs.models import Job
from sandbox.models import AnalyticsEvent, Charge, CrmRecord
from shop.models import Order
from tests.factories import ProductFactory, customer_with_token

pytestmark = pytest.mark.urls("bench.urls")


@pytest.fixture
def customer_client(api_client):
    ProductFactory(sku="MUG-001", price="14.00", stock=5)
    _, token = customer_with_token()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api_client


def order(client, variant: str):
    items = [{"sku": "MUG-001", "quantity": 2}]
    return client.post(f"/bench/{variant}/orders", {"items": items}, format="json")


@pytest.mark.django_db
def test_the_bare_write_is_the_order_alone(customer_client, empty_queues):
    response = order(customer_client, "bare")

    assert response.status_code == 201
    body = response.json()
    assert body["order"]["total"] == "28.00"
    assert body["jobs"] == []
    assert not Job.objects.exists()
    assert sum(empty_queues.llen(q) for q in ("critical", "bulk", "crm", "celery")) == 0


@pytest.mark.django_db
def test_the_bare_write_refuses_what_the_api_refuses(customer_client):
    response = customer_client.post("/bench/bare/orders", {"items": []}, format="json")

    assert response.status_code == 400
    assert not Order.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_synchronous_way_answers_once_every_job_is_done(customer_client, live_server, mailbox):
    response = order(customer_client, "sync")

    assert response.status_code == 201
    body = response.json()
    assert body["order"]["status"] == "paid"
    # Everything but the review reminder, whose time has not come, ran before the answer.
    assert {job["name"]: job["state"] for job in body["jobs"]} == {
        "jobs.charge_payment": "succeeded",
        "jobs.track_analytics_event": "succeeded",
        "jobs.sync_crm_deal": "succeeded",
        "jobs.send_order_confirmation": "succeeded",
        "jobs.make_invoice": "succeeded",
        "jobs.send_review_reminder": "scheduled",
    }
    order_id = body["order"]["id"]
    assert Charge.objects.filter(reference=f"order-{order_id}").count() == 1
    assert AnalyticsEvent.objects.filter(event_id=f"order_placed:{order_id}").exists()
    assert CrmRecord.objects.filter(kind="deal", external_key=f"order-{order_id}").exists()
    assert [m.subject for m in mailbox()] == [f"Order #{order_id} is paid"]


@pytest.mark.django_db
def test_the_common_way_publishes_one_message_per_job_and_records_none(
    customer_client, empty_queues
):
    empty_queues.delete("celery")

    response = order(customer_client, "common")

    assert response.status_code == 201
    assert not Job.objects.exists()
    # charge, analytics, CRM deal and the review reminder (a countdown): no webhook endpoint.
    assert empty_queues.llen("celery") == 4
    empty_queues.delete("celery")

"""Order events go to registered endpoints, signed, retried, recorded; the receiver checks."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from standardwebhooks import Webhook

from jobs.errors import PermanentError
from sandbox.models import ReceivedWebhook, WebhookInbox
from sandbox.switches import set_switch
from shop.models import Order
from stack.waiting import wait_until
from tests.factories import ProductFactory, customer_with_token
from webhooks import services
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, new_secret


@pytest.fixture
def inbox(transactional_db, live_server, settings):
    box = WebhookInbox.objects.create(name="test", secret=new_secret())
    WebhookEndpoint.objects.create(
        url=f"{settings.SANDBOX_BASE_URL}/webhooks/test", secret=box.secret
    )
    return box


def both_delivered() -> bool:
    """The sender's view: it records an attempt after the receiver has answered, so wait for
    that, not for the receiver's row."""
    deliveries = WebhookDelivery.objects.all()
    return deliveries.count() == 2 and not deliveries.filter(delivered_at__isnull=True).exists()


def place_order(api_client) -> int:
    _, token = customer_with_token()
    ProductFactory(sku="MUG-001", stock=5)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api_client.post(
        "/api/orders", {"items": [{"sku": "MUG-001", "quantity": 1}]}, format="json"
    ).json()["order"]["id"]


@pytest.mark.integration
def test_order_events_are_delivered_signed_and_recorded(celery_worker, api_client, inbox):
    order_id = place_order(api_client)

    wait_until(both_delivered, message="two webhooks delivered")
    received = {w.event: w for w in ReceivedWebhook.objects.all()}
    assert set(received) == {"order.placed", "order.paid"}
    assert received["order.paid"].payload["data"] == {
        "order_id": order_id,
        "status": "paid",
        "total": "10.00",
        "currency": "EUR",
    }
    assert Order.objects.get(pk=order_id).status == "paid"
    for delivery in WebhookDelivery.objects.all():
        assert delivery.delivered_at is not None
        [attempt] = delivery.attempts.all()
        assert attempt.status_code == 200
        assert '"duplicate": false' in attempt.response_snippet
        # The receiver saw the delivery's id as webhook-id: its dedup key.
        assert ReceivedWebhook.objects.filter(webhook_id=str(delivery.pk)).exists()


@pytest.mark.integration
def test_a_failing_receiver_gets_retries_and_every_attempt_is_recorded(
    celery_worker, api_client, inbox
):
    set_switch("webhooks", fail_next=2)

    place_order(api_client)

    wait_until(both_delivered, message="both webhooks, in the end")
    assert ReceivedWebhook.objects.count() == 2
    statuses = sorted(WebhookAttempt.objects.values_list("status_code", flat=True))
    assert statuses == [200, 200, 503, 503]  # two failures, absorbed by retries
    assert all(a.latency_ms >= 0 for a in WebhookAttempt.objects.all())


def signed(box, body: str, *, webhook_id="msg_1", at: datetime | None = None) -> dict:
    at = at or datetime.now(tz=UTC)
    return {
        "HTTP_WEBHOOK_ID": webhook_id,
        "HTTP_WEBHOOK_TIMESTAMP": str(int(at.timestamp())),
        "HTTP_WEBHOOK_SIGNATURE": Webhook(box.secret).sign(webhook_id, at, body),
    }


@pytest.mark.django_db
def test_the_receiver_rejects_tampering_and_replays_and_dedupes_by_id(client):
    box = WebhookInbox.objects.create(name="strict", secret=new_secret())
    body = json.dumps({"type": "order.paid", "data": {"order_id": 1}})
    url = "/sandbox/webhooks/strict"

    def post(content, headers):
        return client.post(url, content, content_type="application/json", **headers)

    assert post(body, signed(box, body)).json() == {"duplicate": False}
    assert post(body, signed(box, body)).json() == {"duplicate": True}
    assert post(body.replace("1", "2"), signed(box, body, webhook_id="msg_2")).status_code == 401
    stale = signed(box, body, webhook_id="msg_3", at=datetime.now(tz=UTC) - timedelta(minutes=6))
    assert post(body, stale).status_code == 401
    assert post(body, {}).status_code == 401
    assert ReceivedWebhook.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8000/hook",
        "http://10.1.2.3/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "ftp://example.com/",
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped
        "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
        "http://[::127.0.0.1]/",  # IPv4-compatible
    ],
)
def test_private_and_local_endpoints_are_refused_outside_the_demo(settings, url):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False

    with pytest.raises(ValidationError):
        services.check_address(url)
    endpoint = WebhookEndpoint.objects.create(url=url)
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, event="order.paid", payload={})
    with pytest.raises(PermanentError):
        services.deliver(delivery_id=str(delivery.pk))
    assert not delivery.attempts.exists()  # refused before any request was made


def test_a_public_address_is_allowed(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False

    services.check_address("https://93.184.216.34/hook")  # an IP literal: no DNS needed

"""Emitting order events to webhook endpoints, and delivering them signed.

Deliveries are signed the Standard Webhooks way (HMAC-SHA256 over "id.timestamp.body", the
`standardwebhooks` library), retried on any non-2xx answer and on timeouts by the job
machinery, and every attempt is recorded with its status, latency and a snippet of the answer.
"""

import ipaddress
import json
import socket
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from standardwebhooks import Webhook

from jobs.errors import PermanentError, TransientError
from shop.models import Order
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

SNIPPET_LENGTH = 500


def check_address(url: str) -> None:
    """Refuse URLs whose host resolves to a private, loopback or otherwise non-public address
    (server-side request forgery), unless WEBHOOKS_ALLOW_PRIVATE_ADDRESSES (the demo)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("Use an http(s) URL with a host name.")
    if settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise ValidationError(f"{parts.hostname} does not resolve.") from exc
    for info in infos:
        if not _public(ipaddress.ip_address(info[4][0])):
            raise ValidationError(f"{parts.hostname} points at a private or local address.")


NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Global, and so is any IPv4 address it carries (`::ffff:127.0.0.1`, `64:ff9b::7f00:1`
    and `::127.0.0.1` all say "global" themselves on some Python versions)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and (ip in NAT64 or ip in IPV4_COMPATIBLE):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not embedded.is_global:
            return False
    return ip.is_global


def emit(event: str, *, order: Order, payload: dict) -> list:
    """Record a delivery for each endpoint that wants the event, and its job, in the caller's
    transaction: the webhooks go out only if the order's change commits."""
    from jobs.dispatch import enqueue
    from jobs.tasks.webhooks import deliver_webhook

    jobs = []
    for endpoint in WebhookEndpoint.objects.filter(active=True):
        if endpoint.wants(event):
            delivery = WebhookDelivery.objects.create(
                endpoint=endpoint, event=event, payload=payload, order=order
            )
            # Not `concerning=order`: the job's errors name the staff's endpoint URL, which the
            # customer's order page and API must not show.
            jobs.append(enqueue(deliver_webhook, delivery_id=str(delivery.pk)))
    return jobs


def order_payload(order: Order) -> dict:
    return {
        "order_id": order.pk,
        "status": order.status,
        "total": str(order.total),
        "currency": order.currency,
    }


def deliver(*, delivery_id: str) -> int | None:
    """POST the delivery; the receiver's status code, or None if it was delivered before."""
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:
        raise PermanentError(f"webhook delivery {delivery_id} is gone")
    if delivery.delivered_at:
        return None
    endpoint = delivery.endpoint
    try:
        check_address(endpoint.url)
    except ValidationError as exc:
        raise PermanentError(f"{endpoint.url}: {exc.messages[0]}") from exc

    now = datetime.now(tz=UTC)
    body = json.dumps(
        {"type": delivery.event, "timestamp": now.isoformat(), "data": delivery.payload},
        separators=(",", ":"),
    )
    headers = {
        "webhook-id": str(delivery.pk),
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(endpoint.secret).sign(str(delivery.pk), now, body),
        "content-type": "application/json",
        "user-agent": "shop-jobs-webhooks/1",
    }
    started = time.monotonic()
    try:
        response = requests.post(
            endpoint.url,
            data=body.encode(),
            headers=headers,
            timeout=settings.THIRD_PARTY_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        _record(delivery, started, error=f"{type(exc).__name__}: {exc}")
        raise TransientError(f"webhook to {endpoint.url} got no answer: {exc}") from exc
    _record(delivery, started, status_code=response.status_code, snippet=response.text)
    if not 200 <= response.status_code < 300:
        raise TransientError(f"webhook to {endpoint.url} answered {response.status_code}")
    WebhookDelivery.objects.filter(pk=delivery.pk).update(delivered_at=timezone.now())
    return response.status_code


def _record(delivery, started: float, *, status_code=None, snippet="", error="") -> None:
    WebhookAttempt.objects.create(
        delivery=delivery,
        status_code=status_code,
        latency_ms=round((time.monotonic() - started) * 1000),
        response_snippet=snippet[:SNIPPET_LENGTH],
        error=error[:SNIPPET_LENGTH],
    )

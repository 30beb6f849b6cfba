"""Emitting events to webhook endpoints, and delivering them signed.

Deliveries are signed the Standard Webhooks way (HMAC-SHA256 over "id.timestamp.body", the
`standardwebhooks` library), retried on any non-2xx answer and on timeouts by the job
machinery, and every attempt is recorded with its status, latency and a snippet of the answer.

A delivery resolves the endpoint's host once, checks that address (server-side request
forgery), and connects to that very address: a name that answers differently a moment later
(DNS rebinding) cannot send it elsewhere. It reads at most ANSWER_BYTES_CAP of the answer, all
within THIRD_PARTY_TIMEOUT_SECONDS, so a receiver that trickles or floods cannot hold the
worker's thread.
"""

import ipaddress
import json
import socket
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from requests.adapters import HTTPAdapter
from standardwebhooks import Webhook

from jobs.dispatch import new_job
from jobs.errors import PermanentError, TransientError
from jobs.models import Job
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

SNIPPET_LENGTH = 500
# Enough for the snippet in any UTF-8; the rest of an answer is never read.
ANSWER_BYTES_CAP = 4 * SNIPPET_LENGTH


def check_address(url: str) -> None:
    """Refuse URLs whose host resolves to a private, loopback or otherwise non-public address
    (server-side request forgery), unless WEBHOOKS_ALLOW_PRIVATE_ADDRESSES (the demo)."""
    if settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES:
        _host_and_port(url)
    else:
        checked_address(url)


def checked_address(url: str) -> str:
    """The address a delivery to `url` connects to: its host, resolved once; refused if any
    address the name has is not public, unless WEBHOOKS_ALLOW_PRIVATE_ADDRESSES."""
    host, port = _host_and_port(url)
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise ValidationError(f"{host} does not resolve.") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES and not all(
        _public(ipaddress.ip_address(address)) for address in addresses
    ):
        raise ValidationError(f"{host} points at a private or local address.")
    return addresses[0]


def _host_and_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("Use an http(s) URL with a host name.")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


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


class PinnedAddressAdapter(HTTPAdapter):
    """Connects to `address` whatever the URL's host resolves to by then. The Host header,
    and for https the server name sent (SNI) and the one the certificate must carry, stay the
    URL's host."""

    def __init__(self, address: str) -> None:
        super().__init__(max_retries=0)
        self.address = address

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        host_name = host_params["host"]
        request.headers["Host"] = urlsplit(request.url).netloc.rpartition("@")[2]
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = pool_kwargs["assert_hostname"] = host_name
        host_params["host"] = self.address
        return host_params, pool_kwargs


def record_deliveries(
    event: str, *, payload: dict[str, object], subject: models.Model | None = None
) -> list[WebhookDelivery]:
    """A delivery of the event, carrying `payload`, for each active endpoint that wants it;
    `subject` is what the event is about, if anything."""
    deliveries = []
    for endpoint in active_endpoints():
        if endpoint.wants(event):
            delivery = WebhookDelivery(endpoint=endpoint, event=event, payload=payload)
            delivery.subject = subject
            deliveries.append(delivery)
    return WebhookDelivery.objects.bulk_create(deliveries)


# Every order asks which endpoints want its events, and they change a few times a year: each
# process keeps the list for a few seconds (less than the order's own queries cost to ask;
# bench/, "Request latency"). A change made in this process applies at once (the signal
# below); one made elsewhere within ENDPOINTS_CACHE_SECONDS, and `deliver` checks again.
ENDPOINTS_CACHE_SECONDS = 5.0
_endpoints: tuple[float, list[WebhookEndpoint]] = (0.0, [])


def active_endpoints() -> list[WebhookEndpoint]:
    global _endpoints
    read_at, endpoints = _endpoints
    if time.monotonic() - read_at > ENDPOINTS_CACHE_SECONDS:
        endpoints = list(WebhookEndpoint.objects.filter(active=True))
        _endpoints = (time.monotonic(), endpoints)
    return endpoints


def forget_cached_endpoints() -> None:
    """Read the endpoints afresh next time (a change in this process, or a test that emptied
    the table without the signals)."""
    global _endpoints
    _endpoints = (0.0, [])


@receiver([post_save, post_delete], sender=WebhookEndpoint)
def _endpoints_changed(**kwargs: object) -> None:
    forget_cached_endpoints()


def event_jobs(
    event: str, *, payload: dict[str, object], subject: models.Model | None = None
) -> list[Job]:
    """Record the event's deliveries in the caller's transaction and return their unsaved
    jobs for `jobs.dispatch.enqueue_all`: the webhooks go out only if the caller's change
    commits."""
    # Not `concerning=subject`: the job's errors name the staff's endpoint URL, which the
    # subject's page and API (a customer's order) must not show.
    return [
        new_job("jobs.deliver_webhook", delivery_id=str(delivery.pk))
        for delivery in record_deliveries(event, payload=payload, subject=subject)
    ]


def deliver(*, delivery_id: str) -> int | None:
    """POST the delivery; the receiver's status code, or None if it was delivered before."""
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:
        raise PermanentError(f"webhook delivery {delivery_id} is gone")
    if delivery.delivered_at:
        return None
    endpoint = delivery.endpoint
    if not endpoint.active:
        return None  # switched off since the event (active_endpoints may lag a few seconds)
    try:
        address = checked_address(endpoint.url)
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
        with requests.Session() as session:
            session.mount("http://", PinnedAddressAdapter(address))
            session.mount("https://", PinnedAddressAdapter(address))
            with session.post(
                endpoint.url,
                data=body.encode(),
                headers=headers,
                timeout=settings.THIRD_PARTY_TIMEOUT_SECONDS,
                allow_redirects=False,
                stream=True,
            ) as response:
                snippet = _read_answer(
                    response, deadline=started + settings.THIRD_PARTY_TIMEOUT_SECONDS
                )
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        _record(delivery, started, error=f"{type(exc).__name__}: {exc}")
        raise TransientError(f"webhook to {endpoint.url} got no answer: {exc}") from exc
    _record(delivery, started, status_code=response.status_code, snippet=snippet)
    if not 200 <= response.status_code < 300:
        raise TransientError(f"webhook to {endpoint.url} answered {response.status_code}")
    WebhookDelivery.objects.filter(pk=delivery.pk).update(delivered_at=timezone.now())
    return response.status_code


def _read_answer(response: requests.Response, *, deadline: float) -> str:
    """The start of the answer's body: at most ANSWER_BYTES_CAP, read as it comes (one socket
    read at a time, each within the read timeout); requests.Timeout once past the deadline."""
    content = b""
    while len(content) < ANSWER_BYTES_CAP:
        chunk = response.raw.read1(ANSWER_BYTES_CAP - len(content), decode_content=True)
        if not chunk:
            break
        content += chunk
        if time.monotonic() > deadline:
            raise requests.Timeout(
                f"no complete answer within {settings.THIRD_PARTY_TIMEOUT_SECONDS:g} s"
            )
    try:
        return content.decode(response.encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return content.decode("utf-8", errors="replace")


def _record(delivery, started: float, *, status_code=None, snippet="", error="") -> None:
    WebhookAttempt.objects.create(
        delivery=delivery,
        status_code=status_code,
        latency_ms=round((time.monotonic() - started) * 1000),
        response_snippet=snippet[:SNIPPET_LENGTH],
        error=error[:SNIPPET_LENGTH],
    )

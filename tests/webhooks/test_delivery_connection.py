"""A delivery connects to the address the guard checked, and reads the receiver's answer up to
a byte cap and within one deadline.

The receivers here are HTTP servers on loopback. Names are answered by a fake
`socket.getaddrinfo`, and no connection ever leaves the machine: one to the "public" address
is refused on the spot (`no_connection_leaves_the_machine`)."""

import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest
import trustme
import urllib3.util.connection

from jobs.errors import TransientError
from tests.helpers import loopback_http_server
from webhooks import services
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, new_secret

PUBLIC_ADDRESS = "93.184.216.34"


class Receiver(BaseHTTPRequestHandler):
    """Answers 200 to a POST; subclasses say how. Each test gets its own subclass, whose
    class attributes are that test's record."""

    protocol_version = "HTTP/1.1"
    received: list[dict[str, str]]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append({"host": self.headers["Host"], "path": self.path})
        self.answer()

    def answer(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


def receiver(kind: type[Receiver] = Receiver, **attributes: object) -> type[Receiver]:
    """A receiver of `kind` with a record of its own."""
    return type(kind.__name__, (kind,), {"received": [], **attributes})


def delivery_to(url: str) -> WebhookDelivery:
    endpoint = WebhookEndpoint.objects.create(url=url, secret=new_secret())
    return WebhookDelivery.objects.create(endpoint=endpoint, event="order.paid", payload={})


class FakeDns:
    """Names under `.test` resolve as `answers[name]` says: the addresses that successive
    lookups get, the last one repeating. `lookups[name]`: the answers given."""

    def __init__(self, real_getaddrinfo) -> None:
        self.real_getaddrinfo = real_getaddrinfo
        self.answers: dict[str, list[str]] = {}
        self.lookups: dict[str, list[str]] = {}

    def getaddrinfo(self, host, port, *args, **kwargs):
        if not (isinstance(host, str) and host.endswith(".test")):
            return self.real_getaddrinfo(host, port, *args, **kwargs)
        given = self.lookups.setdefault(host, [])
        address = self.answers[host][min(len(given), len(self.answers[host]) - 1)]
        given.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]


@pytest.fixture
def dns(monkeypatch) -> FakeDns:
    fake = FakeDns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


@pytest.fixture
def connections(monkeypatch) -> list[str]:
    """The hosts urllib3 opened connections to; one to PUBLIC_ADDRESS is refused at once."""
    real_create_connection = urllib3.util.connection.create_connection
    opened: list[str] = []

    def no_connection_leaves_the_machine(address, *args, **kwargs):
        opened.append(address[0])
        if address[0] == PUBLIC_ADDRESS:
            raise ConnectionRefusedError("the tests connect to loopback only")
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(
        urllib3.util.connection, "create_connection", no_connection_leaves_the_machine
    )
    return opened


@pytest.mark.django_db
def test_a_name_that_turns_private_after_the_check_is_never_reached(settings, dns, connections):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    private = receiver()
    with loopback_http_server(private) as server:
        port = server.server_address[1]
        # Public to the guard's lookup, loopback (where `private` listens) to any later one.
        dns.answers["rebinding.test"] = [PUBLIC_ADDRESS, "127.0.0.1"]
        delivery = delivery_to(f"http://rebinding.test:{port}/hook")

        with pytest.raises(TransientError):
            services.deliver(delivery_id=str(delivery.pk))

    assert private.received == []
    assert connections == [PUBLIC_ADDRESS]  # the address that was checked, and no other
    assert dns.lookups["rebinding.test"] == [PUBLIC_ADDRESS]  # resolved once
    [attempt] = delivery.attempts.all()
    assert attempt.status_code is None
    assert "ConnectionError" in attempt.error


@pytest.mark.django_db
def test_the_pinned_connection_keeps_the_urls_host_name(settings, dns, connections):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True  # the receiver is on loopback
    hook = receiver()
    with loopback_http_server(hook) as server:
        port = server.server_address[1]
        dns.answers["hooks.receiver.test"] = ["127.0.0.1"]
        delivery = delivery_to(f"http://hooks.receiver.test:{port}/hook?tenant=7")

        assert services.deliver(delivery_id=str(delivery.pk)) == 200

    assert hook.received == [{"host": f"hooks.receiver.test:{port}", "path": "/hook?tenant=7"}]
    assert connections == ["127.0.0.1"]
    assert dns.lookups["hooks.receiver.test"] == ["127.0.0.1"]
    assert delivery.attempts.get().response_snippet == "ok"


def tls_for(ca: trustme.CA, certified_name: str, names_asked: list[str]) -> ssl.SSLContext:
    """A server's TLS context with a certificate for `certified_name`; the server names
    clients ask for (SNI) go to `names_asked`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(certified_name).configure_cert(context)
    context.sni_callback = lambda _socket, name, _context: names_asked.append(name)
    return context


@pytest.fixture
def ca(monkeypatch, tmp_path) -> trustme.CA:
    """A certificate authority that requests trusts for the test."""
    authority = trustme.CA()
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    return authority


@pytest.mark.django_db
def test_a_pinned_https_connection_asks_for_and_verifies_the_urls_host_name(
    settings, dns, connections, ca
):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True  # the receiver is on loopback
    names_asked: list[str] = []
    hook = receiver()
    with loopback_http_server(hook, tls=tls_for(ca, "hooks.receiver.test", names_asked)) as server:
        port = server.server_address[1]
        dns.answers["hooks.receiver.test"] = ["127.0.0.1"]
        delivery = delivery_to(f"https://hooks.receiver.test:{port}/hook")

        assert services.deliver(delivery_id=str(delivery.pk)) == 200

    assert names_asked == ["hooks.receiver.test"]
    assert hook.received == [{"host": f"hooks.receiver.test:{port}", "path": "/hook"}]
    assert connections == ["127.0.0.1"]


@pytest.mark.django_db
def test_a_pinned_https_connection_refuses_a_certificate_for_another_name(
    settings, dns, connections, ca
):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True  # the receiver is on loopback
    hook = receiver()
    with loopback_http_server(hook, tls=tls_for(ca, "someone-else.test", [])) as server:
        dns.answers["hooks.receiver.test"] = ["127.0.0.1"]
        delivery = delivery_to(f"https://hooks.receiver.test:{server.server_address[1]}/hook")

        with pytest.raises(TransientError):
            services.deliver(delivery_id=str(delivery.pk))

    assert hook.received == []
    assert "SSLError" in delivery.attempts.get().error


class TricklingReceiver(Receiver):
    """Sends its status and headers at once, then its 10-byte body a byte a second."""

    def answer(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "10")
        self.end_headers()
        for _ in range(10):
            time.sleep(1)
            try:
                self.wfile.write(b"x")
            except OSError:  # the sender gave up
                return


@pytest.mark.django_db
def test_a_trickling_answer_is_cut_off_at_the_deadline_and_retried(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True  # the receiver is on loopback
    settings.THIRD_PARTY_TIMEOUT_SECONDS = 2
    with loopback_http_server(receiver(TricklingReceiver)) as server:
        delivery = delivery_to(f"http://127.0.0.1:{server.server_address[1]}/hook")

        started = time.monotonic()
        with pytest.raises(TransientError, match="no complete answer within 2 s"):
            services.deliver(delivery_id=str(delivery.pk))
        took = time.monotonic() - started

    assert 2 <= took < 4.5  # the deadline, give or take the byte in flight
    [attempt] = WebhookAttempt.objects.filter(delivery=delivery)
    assert attempt.status_code is None
    assert "no complete answer within 2 s" in attempt.error
    assert delivery.delivered_at is None


FLOOD_BYTES = 64 * 1024 * 1024


class FloodingReceiver(Receiver):
    """Answers 200 with a 64 MiB body, as fast as loopback takes it; records how much it
    managed to send before the sender hung up."""

    sent: int
    finished: threading.Event

    def answer(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(FLOOD_BYTES))
        self.end_headers()
        block, sent = b"x" * 65536, 0
        try:
            while sent < FLOOD_BYTES:
                self.wfile.write(block)
                sent += len(block)
        except OSError:  # the sender hung up
            pass
        finally:
            type(self).sent = sent
            self.finished.set()


@pytest.mark.django_db
def test_an_endless_answer_is_cut_off_at_the_cap(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True  # the receiver is on loopback
    flood = receiver(FloodingReceiver, sent=0, finished=threading.Event())
    with loopback_http_server(flood) as server:
        delivery = delivery_to(f"http://127.0.0.1:{server.server_address[1]}/hook")

        assert services.deliver(delivery_id=str(delivery.pk)) == 200
        assert flood.finished.wait(timeout=10)

    assert flood.sent < FLOOD_BYTES / 2  # most of it was never read
    attempt = delivery.attempts.get()
    assert attempt.status_code == 200
    assert attempt.response_snippet == "x" * services.SNIPPET_LENGTH

"""Small helpers shared by the test modules (waiting and ports: the stack package)."""

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO

from PIL import Image


def png_bytes(size: tuple[int, int] = (300, 200), color: str = "teal") -> bytes:
    buffer = BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


@contextmanager
def loopback_http_server(
    handler: type[BaseHTTPRequestHandler], *, tls: ssl.SSLContext | None = None
) -> Iterator[ThreadingHTTPServer]:
    """An HTTP server on a free loopback port, answering with `handler` on threads of its own
    (its address: `server.server_address`); HTTPS with the `tls` context, if given."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def place_order(api_client, *, card_number: str | None = None, quantity: int = 2) -> int:
    """POST /api/orders of `quantity` MUG-001 as the client's customer (paid with
    `card_number`, or the default test card); the new order's id, once answered 201."""
    body: dict = {"items": [{"sku": "MUG-001", "quantity": quantity}]}
    if card_number is not None:
        body["card_number"] = card_number
    placed = api_client.post("/api/orders", body, format="json")
    assert placed.status_code == 201, placed.content
    return int(placed.json()["order"]["id"])


def sign_up_with_avatar(browser, *, email: str = "mei@example.com"):  # -> shop.models.Customer
    """Sign up through the page, with a PNG avatar; the new customer."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from shop.models import Customer

    signed_up = browser.post(
        "/signup",
        {
            "email": email,
            "name": "Mei",
            "password": "a-fine-long-password",
            "avatar": SimpleUploadedFile("mei.png", png_bytes(), content_type="image/png"),
        },
    )
    assert signed_up.status_code == 302
    return Customer.objects.get(user__email=email)

"""The third parties' clients put values into URL paths escaped: a real service splits the
path on slashes and unescapes each segment, and must find the value whole, whatever it holds
(an email address may hold `/`, `?`, `#` or `%`)."""

from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote

import pytest

from shop.clients import crm
from tests.helpers import loopback_http_server


class RecordingCrm(BaseHTTPRequestHandler):
    """Answers 200 to every PUT and keeps the raw request targets, as they came on the wire."""

    targets: list[str] = []

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.targets.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def segments_read_by_a_real_service(target: str) -> list[str]:
    assert "?" not in target
    assert "#" not in target
    return [unquote(segment) for segment in target.split("/")]


@pytest.mark.parametrize(
    "email", ["a/b@example.com", "a%2fb@example.com", "a?b#c@example.com", "ann@exämple.com"]
)
def test_the_crm_client_escapes_the_address_and_the_deal_key_in_the_path(settings, email):
    RecordingCrm.targets = []
    with loopback_http_server(RecordingCrm) as server:
        settings.CRM_URL = f"http://127.0.0.1:{server.server_address[1]}/crm"
        crm.upsert_contact(email=email, data={"name": "Ann"})
        crm.upsert_deal(deal_key=f"deal/{email}", data={})

    contact, deal = (segments_read_by_a_real_service(target) for target in RecordingCrm.targets)
    assert contact == ["", "crm", "contacts", email]
    assert deal == ["", "crm", "deals", f"deal/{email}"]

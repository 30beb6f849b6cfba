"""The sandbox SMS provider keeps the promise a real one makes: one message per Idempotency-Key."""

import pytest

from sandbox.models import ReceivedRequest, SmsMessage
from sandbox.switches import set_switch

pytestmark = pytest.mark.django_db

SHIPPED = {"to": "+4915112345678", "body": "Order #7 has shipped."}


def send(client, key, message=SHIPPED):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post("/sandbox/sms/messages", message, content_type="application/json", **headers)


def test_one_idempotency_key_sends_one_message(client):
    first = send(client, "order-7-shipped-sms")
    again = send(client, "order-7-shipped-sms")

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json() == {"id": first.json()["id"], **SHIPPED}
    message = SmsMessage.objects.get()
    assert (message.to, message.body) == (SHIPPED["to"], SHIPPED["body"])
    assert ReceivedRequest.objects.filter(service="sms").count() == 2


@pytest.mark.parametrize(
    ("key", "message"),
    [
        pytest.param(None, SHIPPED, id="no-key"),
        pytest.param("k-1", {**SHIPPED, "to": "015112345678"}, id="not-e164"),
        pytest.param("k-2", {"to": SHIPPED["to"]}, id="no-body"),
        pytest.param("k-3", {**SHIPPED, "body": "x" * 1601}, id="too-long"),
    ],
)
def test_a_message_without_a_key_or_with_a_bad_number_or_body_is_400(client, key, message):
    response = send(client, key, message)

    assert response.status_code == 400
    assert response.json()["detail"]
    assert not SmsMessage.objects.exists()


def test_the_sms_switch_fails_exactly_the_next_requests(client):
    set_switch("sms", fail_next=2)

    codes = [send(client, "order-8-shipped-sms").status_code for _ in range(3)]

    assert codes == [503, 503, 201]
    assert SmsMessage.objects.count() == 1


def test_the_sandbox_page_links_the_text_messages_page_which_lists_them(client):
    send(client, "order-7-shipped-sms")
    send(client, "order-7-shipped-sms")

    panel = client.get("/sandbox/").content.decode()
    page = client.get("/sandbox/sms/")

    assert 'href="/sandbox/sms/"' in panel
    assert page.status_code == 200
    text = page.content.decode()
    assert SHIPPED["to"] in text
    assert text.count(SHIPPED["body"]) == 1
    assert "1 repeated request" in text

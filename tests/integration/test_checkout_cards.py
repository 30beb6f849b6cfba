"""Checkout with the gateway's test cards, and the account page's avatar, end to end: real
broker, real workers (the media worker's thumbnails included), the sandbox gateway over HTTP."""

from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from jobs.models import Job
from sandbox.models import Charge, ReceivedRequest
from shop.models import Order, Product
from stack.waiting import wait_until
from tests.factories import ProductFactory, customer_with_token
from tests.helpers import sign_up_with_avatar

pytestmark = pytest.mark.integration


def test_each_test_card_ends_its_order_as_the_gateway_says(celery_worker, api_client):
    _, token = customer_with_token()
    ProductFactory(sku="MUG-001", price="14.00", stock=10)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    cards = {
        "succeeds": "4242 4242 4242 4242",
        "declined": "4000 0000 0000 0002",
        "retry": "4000000000000119",
    }
    orders = {}
    for name, number in cards.items():
        response = api_client.post(
            "/api/orders",
            {"items": [{"sku": "MUG-001", "quantity": 1}], "card_number": number},
            format="json",
        )
        assert response.status_code == 201, response.content
        orders[name] = response.json()["order"]["id"]

    def charged(name: str) -> Job:
        return Job.objects.get(name="jobs.charge_payment", concerning_id=orders[name])

    wait_until(
        lambda: all(charged(name).is_final for name in orders),
        message="every order's payment job to end",
    )
    # A decline is the gateway's answer, not a success of the job: its state says so.
    assert {name: charged(name).state for name in orders} == {
        "succeeds": "succeeded",
        "declined": "declined",
        "retry": "succeeded",
    }
    assert charged("declined").outcome_reason == "card declined"

    status = {name: Order.objects.get(pk=pk).status for name, pk in orders.items()}
    assert status == {"succeeds": "paid", "declined": "payment_failed", "retry": "paid"}
    # The processing error was a failed attempt that the job's retry policy tried again.
    assert (charged("succeeds").attempts, charged("retry").attempts) == (1, 2)
    flaky_key = f"order-{orders['retry']}-charge"
    answers = ReceivedRequest.objects.filter(service="payments", idempotency_key=flaky_key)
    assert sorted(answers.values_list("status_code", flat=True)) == [201, 500]
    assert Charge.objects.count() == 2  # the declined card was charged nothing
    # The declined order's mug is back in stock; the two paid ones are sold.
    assert Product.objects.get(sku="MUG-001").stock == 8
    # What the gateway was sent is the token, never the number.
    sent = [str(body) for body in ReceivedRequest.objects.values_list("body", flat=True)]
    assert not any("4000000000000002" in body or "4242424242424242" in body for body in sent)


def test_the_account_page_shows_the_avatar_thumbnail_the_media_job_made(celery_worker):
    browser = Client()
    customer = sign_up_with_avatar(browser)

    def thumbnail_shown() -> bool:
        return 'data-final="true"' in browser.get("/account/avatar").content.decode()

    wait_until(thumbnail_shown, message="the account page to show the thumbnail")

    html = browser.get("/account").content.decode()
    customer.refresh_from_db()
    name = customer.avatar_thumbnails["256"]
    assert f'<img src="/media/{name}"' in html
    assert Path(settings.MEDIA_ROOT, name).is_file()
    assert "being prepared" not in html

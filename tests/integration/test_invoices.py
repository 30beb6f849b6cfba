"""The invoice, end to end: an order paid with the gateway's test card gets its invoice PDF
from the `media` worker, linked from the confirmation email, downloadable by its customer; a
second run of the job leaves the one file it made."""

from io import BytesIO

import pytest
from django.core.files.storage import storages
from django.db import transaction
from django.test import Client
from pypdf import PdfReader

from jobs.dispatch import enqueue_all, new_job
from jobs.models import Job
from shop.models import Order
from stack.waiting import wait_until
from tests.factories import ProductFactory, customer_with_token

pytestmark = pytest.mark.integration


def invoice_files(order_id: int) -> list[str]:
    _, files = storages["invoices"].listdir("")
    return sorted(name for name in files if f"{order_id:06d}" in name)


def test_a_paid_order_gets_its_invoice_pdf_from_the_media_worker(
    celery_worker, api_client, mailbox, settings
):
    customer, token = customer_with_token()
    ProductFactory(sku="MUG-001", name="Mug", price="14.00", stock=10)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    placed = api_client.post(
        "/api/orders",
        {"items": [{"sku": "MUG-001", "quantity": 2}], "card_number": "4242 4242 4242 4242"},
        format="json",
    )
    assert placed.status_code == 201, placed.content
    order_id = placed.json()["order"]["id"]
    assert placed.json()["order"]["invoice_url"] is None

    def invoice_job() -> Job | None:
        return Job.objects.filter(name="jobs.make_invoice", concerning_id=order_id).first()

    wait_until(
        lambda: (job := invoice_job()) is not None and job.state == "succeeded",
        message="the invoice job to succeed",
    )
    job = invoice_job()
    assert job is not None
    assert (job.queue, job.attempts) == ("media", 1)
    assert Order.objects.get(pk=order_id).status == "paid"

    # The API links it, and serves it to the bearer of the customer's token.
    url = api_client.get(f"/api/orders/{order_id}").json()["order"]["invoice_url"]
    assert url == f"http://testserver/api/orders/{order_id}/invoice"
    response = api_client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    text = PdfReader(BytesIO(b"".join(response.streaming_content))).pages[0].extract_text()
    assert f"Invoice INV-{order_id:06d}" in text
    assert "Mug (MUG-001)" in text
    assert "28.00 EUR" in text
    assert "Visa ending in 4242" in text

    # The confirmation email links the invoice's page, on the site's address, which answers
    # the customer with the same PDF.
    wait_until(
        lambda: any(f"Order #{order_id}" in m.subject for m in mailbox()),
        message="the confirmation email",
    )
    [confirmation] = [m for m in mailbox() if f"Order #{order_id}" in m.subject]
    page = f"/orders/{order_id}/invoice.pdf"
    assert f"{settings.SITE_URL}{page}" in confirmation.body
    browser = Client()
    browser.force_login(customer.user)
    download = browser.get(page)
    assert download.status_code == 200
    assert b"".join(download.streaming_content).startswith(b"%PDF-")
    assert invoice_files(order_id) == [f"invoice-{order_id:06d}.pdf"]

    # A second run (the job recorded again, as an operator's replay would) writes the same file.
    order = Order.objects.get(pk=order_id)
    with transaction.atomic():
        [again] = enqueue_all([new_job("jobs.make_invoice", concerning=order, order_id=order_id)])
    wait_until(
        lambda: Job.objects.get(pk=again.pk).state == "succeeded",
        message="the second invoice job to succeed",
    )
    assert invoice_files(order_id) == [f"invoice-{order_id:06d}.pdf"]
    assert Order.objects.get(pk=order_id).invoice.name == f"invoice-{order_id:06d}.pdf"

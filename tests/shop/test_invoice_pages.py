"""Who gets an order's invoice, and what the order page, the API and the confirmation email say
of it before and after the invoice job made it (the job itself runs on a real worker in
tests/integration/test_invoices.py)."""

from decimal import Decimal
from io import BytesIO
from typing import cast

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from pypdf import PdfReader

from jobs.dispatch import enqueue_all, new_job
from jobs.models import Job
from shop import emails, invoices
from shop.models import Order, OrderLine, Payment, Product
from tests.factories import CustomerFactory, OrderFactory, ProductFactory, customer_with_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def order() -> Order:
    """A paid order of two mugs, its invoice not made yet."""
    paid = cast(
        Order,
        OrderFactory(
            status=Order.Status.PAID,
            total=Decimal("28.00"),
            card_brand="visa",
            card_last4="4242",
            line=None,
        ),
    )
    OrderLine.objects.create(
        order=paid,
        product=cast(Product, ProductFactory(sku="MUG-001", name="Mug", price="14.00")),
        quantity=2,
        unit_price=Decimal("14.00"),
    )
    Payment.objects.create(order=paid, gateway_charge_id="ch_1", amount=paid.total, currency="EUR")
    return paid


def invoice_made(order: Order) -> None:
    invoices.make_invoice(order_id=order.pk)
    order.refresh_from_db()


def test_its_customer_downloads_the_invoice_as_a_pdf_attachment(client, order):
    client.force_login(order.customer.user)
    invoice_made(order)

    response = client.get(f"/orders/{order.pk}/invoice.pdf")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == (f'attachment; filename="INV-{order.pk:06d}.pdf"')
    assert "no-store" in response["Cache-Control"]
    body = b"".join(response.streaming_content)
    text = PdfReader(BytesIO(body)).pages[0].extract_text()
    assert f"Invoice INV-{order.pk:06d}" in text
    assert "28.00 EUR" in text


def test_before_the_invoice_is_made_its_address_says_it_is_being_prepared(client, order):
    client.force_login(order.customer.user)

    response = client.get(f"/orders/{order.pk}/invoice.pdf")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert "Your invoice is being prepared" in response.content.decode()


def test_an_unpaid_order_has_no_invoice_and_its_page_says_why(client):
    unpaid = cast(Order, OrderFactory(status=Order.Status.PAYMENT_FAILED))
    client.force_login(unpaid.customer.user)

    response = client.get(f"/orders/{unpaid.pk}/invoice.pdf")

    assert response.status_code == 404
    assert "only paid orders get one" in response.content.decode()


def test_another_customer_gets_a_404_and_a_visitor_the_login_page(client, order):
    invoice_made(order)

    anonymous = client.get(f"/orders/{order.pk}/invoice.pdf")
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/login?next=")

    client.force_login(CustomerFactory().user)
    other = client.get(f"/orders/{order.pk}/invoice.pdf")
    assert other.status_code == 404
    assert "being prepared" not in other.content.decode()


def test_staff_download_any_customers_invoice(client, order):
    invoice_made(order)
    staff = get_user_model().objects.create_user(
        "staff@example.com", "staff@example.com", "a-long-password", is_staff=True
    )
    client.force_login(staff)

    assert client.get(f"/orders/{order.pk}/invoice.pdf").status_code == 200


def test_the_order_timeline_links_the_invoice_once_it_is_made(client, order):
    client.force_login(order.customer.user)
    enqueue_all([new_job("jobs.make_invoice", concerning=order, order_id=order.pk)])

    before = client.get(f"/orders/{order.pk}/timeline").content.decode()
    assert "Invoice: <span" in before
    assert "being prepared" in before
    assert 'data-final="false"' in before  # its job is not done: the page keeps polling
    assert "Invoice (PDF)" not in before

    invoice_made(order)
    Job.objects.filter(name="jobs.make_invoice").update(state=Job.State.SUCCEEDED)
    after = client.get(f"/orders/{order.pk}/timeline").content.decode()
    assert f'href="/orders/{order.pk}/invoice.pdf"' in after
    assert "Invoice (PDF)" in after
    assert "being prepared" not in after
    assert client.get(f"/orders/{order.pk}").content.decode().count("Invoice (PDF)") == 1


def test_the_api_gives_the_invoice_url_once_it_is_made_and_serves_the_pdf(api_client):
    customer, token = customer_with_token()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    paid = cast(Order, OrderFactory(customer=customer, status=Order.Status.PAID))

    body = api_client.get(f"/api/orders/{paid.pk}").json()
    assert body["order"]["invoice_url"] is None
    not_yet = api_client.get(f"/api/orders/{paid.pk}/invoice")
    assert not_yet.status_code == 404
    assert not_yet.json() == {"detail": "The invoice of this order is not made yet."}

    invoice_made(paid)
    url = api_client.get(f"/api/orders/{paid.pk}").json()["order"]["invoice_url"]
    assert url == f"http://testserver/api/orders/{paid.pk}/invoice"

    for accept in ["application/pdf", "application/octet-stream", "*/*"]:
        response = api_client.get(url, HTTP_ACCEPT=accept)
        assert response.status_code == 200, accept
        assert response["Content-Type"] == "application/pdf"
        assert response["Content-Disposition"] == f'attachment; filename="INV-{paid.pk:06d}.pdf"'
        assert b"".join(response.streaming_content).startswith(b"%PDF-")


def test_another_customers_invoice_is_a_json_404_on_the_api(api_client, order):
    invoice_made(order)
    _, token = customer_with_token()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    response = api_client.get(f"/api/orders/{order.pk}/invoice", HTTP_ACCEPT="application/pdf")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    # The same answer as for an order that does not exist: nothing says it has an invoice.
    assert response.json() == api_client.get("/api/orders/999999/invoice").json()
    api_client.credentials()
    assert api_client.get(f"/api/orders/{order.pk}/invoice").status_code == 401


def test_the_confirmation_email_links_the_invoice_page(order, settings):
    settings.SITE_URL = "https://shop.example.com"

    assert emails.send_order_confirmation(order_id=order.pk)

    [message] = mail.outbox
    assert f"Your invoice (PDF): https://shop.example.com/orders/{order.pk}/invoice.pdf" in (
        message.body
    )


def test_while_a_second_run_replaces_the_file_the_page_says_being_prepared(client, order):
    client.force_login(order.customer.user)
    invoice_made(order)
    order.invoice.storage.delete(order.invoice.name)  # the instant before the new file is saved

    response = client.get(f"/orders/{order.pk}/invoice.pdf")

    assert response.status_code == 404
    assert "Your invoice is being prepared" in response.content.decode()

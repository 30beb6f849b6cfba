"""The invoice PDF: what it says, read back with a PDF reader as a customer's viewer would, and
what a run of its job leaves in the storage (one file, however often it runs)."""

from datetime import UTC, datetime
from decimal import Decimal
from io import BytesIO
from typing import cast

import pytest
from django.core.files.storage import storages
from pypdf import PdfReader

from jobs.errors import Skip
from shop import invoices
from shop.invoices import InvoiceLine
from shop.models import Order, OrderLine, Payment, Product
from tests.factories import CustomerFactory, OrderFactory, ProductFactory


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(data)).pages)


def test_the_invoice_says_who_bought_what_for_how_much_and_that_it_is_paid(settings):
    settings.SHOP_NAME = "Mugs & Lamps Ltd"
    data = invoices.render_invoice(
        number="INV-000042",
        issued_at=datetime(2026, 12, 5, 10, 30, tzinfo=UTC),
        customer_name="Zoë Müller",
        customer_email="zoe@example.com",
        lines=[
            InvoiceLine(description="Mug (MUG-001)", quantity=3, unit_price=Decimal("14.10")),
            InvoiceLine(description="Desk lamp (LAMP-1)", quantity=1, unit_price=Decimal("1200")),
        ],
        total=Decimal("1242.30"),
        currency="EUR",
        card_brand="visa",
        card_last4="4242",
    )

    text = pdf_text(data)
    for expected in [
        "Mugs & Lamps Ltd",
        "Invoice INV-000042",
        "2026-12-05",
        "Zoë Müller <zoe@example.com>",
        "Mug (MUG-001)",
        "42.30 EUR",  # 3 x 14.10, in Decimal: no 42.29999…
        "1,200.00 EUR",
        "Total",
        "1,242.30 EUR",
        "Visa ending in 4242",
        "Paid",
    ]:
        assert expected in text, expected


def test_characters_the_font_cannot_show_do_not_fail_the_invoice():
    data = invoices.render_invoice(
        number="INV-000001",
        issued_at=datetime(2026, 1, 1, tzinfo=UTC),
        customer_name="李小龍",
        customer_email="li@example.com",
        lines=[InvoiceLine(description="Mug", quantity=1, unit_price=Decimal("1.00"))],
        total=Decimal("1.00"),
        currency="EUR",
        card_brand="",
        card_last4="",
    )
    assert "li@example.com" in pdf_text(data)


def paid_order() -> Order:
    customer = CustomerFactory(name="Ada")
    order = cast(
        Order,
        OrderFactory(
            customer=customer,
            status=Order.Status.PAID,
            total=Decimal("28.00"),
            card_brand="visa",
            card_last4="4242",
            line=None,
        ),
    )
    OrderLine.objects.create(
        order=order,
        product=cast(Product, ProductFactory(sku="MUG-001", name="Mug", price="14.00")),
        quantity=2,
        unit_price=Decimal("14.00"),
    )
    Payment.objects.create(
        order=order, gateway_charge_id="ch_1", amount=order.total, currency="EUR"
    )
    return order


@pytest.mark.django_db
def test_making_the_invoice_twice_leaves_one_file_under_the_orders_name():
    order = paid_order()
    storage = storages["invoices"]

    first = invoices.make_invoice(order_id=order.pk)
    second = invoices.make_invoice(order_id=order.pk)

    order.refresh_from_db()
    assert first == second == order.invoice.name == f"invoice-{order.pk:06d}.pdf"
    _, files = storage.listdir("")
    assert [name for name in files if f"{order.pk:06d}" in name] == [order.invoice.name]
    with order.invoice.open("rb") as pdf:
        text = pdf_text(pdf.read())
    assert f"Invoice INV-{order.pk:06d}" in text
    assert "Mug (MUG-001)" in text
    assert "28.00 EUR" in text


@pytest.mark.django_db
def test_an_unpaid_order_gets_no_invoice():
    order = OrderFactory(status=Order.Status.PAYMENT_FAILED)
    with pytest.raises(Skip):
        invoices.make_invoice(order_id=order.pk)
    order.refresh_from_db()
    assert not order.invoice

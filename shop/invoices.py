"""An order's invoice: a PDF made once it is paid, on the `media` workers (jobs.make_invoice).

Rendered with fpdf2 (pure Python, no system library), stored through the `invoices` storage
(settings.STORAGES): never under MEDIA_URL, for an invoice is its customer's alone and is only
served by the views that check who asks (shop.views.order_invoice, the API's twin).
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.files.base import File
from fpdf import FPDF
from fpdf.errors import FPDFException

from jobs.errors import PermanentError, Skip
from shop.files import replace_file
from shop.models import Order, Payment, invoice_storage

CENT = Decimal("0.01")
# Order.card_brand is a code (shop.cards.brand_of); the invoice prints the brand's name.
BRAND_NAMES = {"visa": "Visa", "mastercard": "Mastercard", "amex": "American Express"}


@dataclass(frozen=True)
class InvoiceLine:
    description: str
    quantity: int
    unit_price: Decimal

    @property
    def total(self) -> Decimal:
        return (self.unit_price * self.quantity).quantize(CENT)


def invoice_number(order: Order) -> str:
    """The invoice's number: the order's, so that an order has one invoice however often its
    job runs, and customer service finds one from the other."""
    return f"INV-{order.pk:06d}"


def file_name(order: Order) -> str:
    """Where its PDF is kept: fixed by the order, so a second run writes the same file."""
    return f"invoice-{order.pk:06d}.pdf"


def download_name(order: Order) -> str:
    """The name a browser saves it under."""
    return f"{invoice_number(order)}.pdf"


def open_invoice(order: Order) -> File | None:
    """The order's invoice PDF, opened for reading; None until it is made. Also None for the
    instant a second run of its job replaces the file (make_invoice): not made, for that read."""
    if not order.invoice:
        return None
    try:
        return invoice_storage().open(order.invoice.name, "rb")
    except FileNotFoundError:
        return None


def money(amount: Decimal, currency: str) -> str:
    """ "1,234.50 EUR": Decimal all the way (a float would print 0.1 + 0.2 as it is)."""
    return f"{amount.quantize(CENT):,} {currency}"


def render_invoice(
    *,
    number: str,
    issued_at: datetime,
    customer_name: str,
    customer_email: str,
    lines: list[InvoiceLine],
    total: Decimal,
    currency: str,
    card_brand: str,
    card_last4: str,
) -> bytes:
    """The invoice as a PDF document: who, what, how much, and how it was paid.

    The shop's name comes from settings.SHOP_NAME. Text is set in the PDF's built-in Helvetica,
    which covers Western European text (Windows-1252, the euro sign included); other characters
    print as "?" rather than fail the job, as a font of their own would have to ship with the app.
    A document fpdf2 cannot make is a PermanentError: the same data fails the same way again.
    """
    pdf = FPDF(format="A4")
    pdf.core_fonts_encoding = "cp1252"
    # Fixed, so that the same order gives the same bytes (fpdf2 stamps the time otherwise).
    pdf.set_creation_date(issued_at)
    pdf.set_title(f"Invoice {number}")
    pdf.set_author(settings.SHOP_NAME)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()

    def text(value: str) -> str:
        return value.encode("cp1252", errors="replace").decode("cp1252")

    def row(*cells: tuple[str, float, str], bold: bool = False, border: str = "") -> None:
        pdf.set_font("Helvetica", style="B" if bold else "", size=10)
        for value, width, align in cells:
            pdf.cell(width, 7, text(value), border=border, align=align)
        pdf.ln()

    pdf.set_font("Helvetica", style="B", size=18)
    pdf.cell(0, 10, text(settings.SHOP_NAME), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=14)
    pdf.cell(0, 8, text(f"Invoice {number}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    row(("Date", 35, "L"), (issued_at.strftime("%Y-%m-%d"), 0, "L"))
    row(("Billed to", 35, "L"), (f"{customer_name} <{customer_email}>", 0, "L"))
    row(("Currency", 35, "L"), (currency, 0, "L"))
    pdf.ln(4)

    row(
        ("Item", 90, "L"),
        ("Quantity", 25, "R"),
        ("Unit price", 35, "R"),
        ("Line total", 40, "R"),
        bold=True,
        border="B",
    )
    for line in lines:
        row(
            (line.description, 90, "L"),
            (str(line.quantity), 25, "R"),
            (money(line.unit_price, currency), 35, "R"),
            (money(line.total, currency), 40, "R"),
        )
    row(("Total", 150, "R"), (money(total, currency), 40, "R"), bold=True, border="T")
    pdf.ln(6)
    brand = BRAND_NAMES.get(card_brand, "card")
    paid_with = f"{brand} ending in {card_last4}" if card_last4 else "card"
    row((f"Paid with {paid_with}.", 0, "L"))
    pdf.set_font("Helvetica", style="B", size=14)
    pdf.set_text_color(0, 128, 0)
    pdf.cell(0, 10, "Paid", new_x="LMARGIN", new_y="NEXT")
    try:
        return bytes(pdf.output())
    except FPDFException as exc:
        raise PermanentError(f"invoice {number} could not be rendered: {exc}") from exc


def make_invoice(*, order_id: int) -> str:
    """Render the paid order's invoice and keep it on Order.invoice; return its stored name.

    Idempotent: the file's name is the order's (file_name), and a second run replaces the file
    under that same name and writes the same field, so an order has one invoice file however
    often its job runs (a run cut short and done again included).
    """
    order = Order.objects.select_related("customer__user").filter(pk=order_id).first()
    if order is None:
        raise PermanentError(f"order {order_id} is gone")
    if order.status not in Order.PAID_STATUSES:
        raise Skip(f"the order is {order.get_status_display()}, not paid")
    payment = Payment.objects.filter(order=order).first()
    pdf = render_invoice(
        number=invoice_number(order),
        issued_at=payment.created_at if payment else order.created_at,
        customer_name=order.customer.name,
        customer_email=order.customer.email,
        lines=[
            InvoiceLine(
                description=f"{line.product.name} ({line.product.sku})",
                quantity=line.quantity,
                unit_price=line.unit_price,
            )
            for line in order.lines.select_related("product")
        ],
        total=order.total,
        currency=order.currency,
        card_brand=order.card_brand,
        card_last4=order.card_last4,
    )
    name = file_name(order)
    stored = replace_file(invoice_storage(), name, pdf, what="invoice")
    Order.objects.filter(pk=order.pk).update(invoice=stored)
    return stored

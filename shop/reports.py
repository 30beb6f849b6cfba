"""The weekly sales report: a CSV of last week's paid orders, written to storage and emailed
to staff. Keyed by ISO week, so a repeated job neither writes nor sends it twice."""

import csv
import io
import smtplib
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.mail import EmailMessage
from django.db.models import F, Sum
from django.utils import timezone

from jobs import effects
from jobs.errors import TransientError
from shop.emails import message_id
from shop.models import Order, OrderLine

COLUMNS = ["sku", "product", "quantity", "revenue", "currency"]


def last_week(today: date | None = None) -> str:
    """The ISO week before today's, as "2026-W47"."""
    year, week, _ = ((today or timezone.localdate()) - timedelta(days=7)).isocalendar()
    return f"{year}-W{week:02d}"


def _bounds(week: str) -> tuple[datetime, datetime]:
    monday = date.fromisocalendar(int(week[:4]), int(week[6:]), 1)
    start = timezone.make_aware(datetime.combine(monday, time.min))
    return start, start + timedelta(days=7)


def sales_rows(week: str) -> list[dict]:
    start, end = _bounds(week)
    lines = (
        OrderLine.objects.filter(
            order__status__in=Order.PAID_STATUSES,
            order__created_at__gte=start,
            order__created_at__lt=end,
        )
        .values("product__sku", "product__name", "order__currency")
        .annotate(units=Sum("quantity"), revenue=Sum(F("quantity") * F("unit_price")))
        .order_by("product__sku")
    )
    return [
        {
            "sku": line["product__sku"],
            "product": line["product__name"],
            "quantity": line["units"],
            "revenue": f"{line['revenue']:.2f}",
            "currency": line["order__currency"],
        }
        for line in lines
    ]


def render_csv(rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def send_weekly_sales_report(*, week: str, job_id: str | None = None) -> str | None:
    """Write reports/sales-<week>.csv and email it to every staff member with an address.
    Returns the file's name, or None if this week's report was sent already."""
    key = f"weekly-sales-report:{week}"
    with effects.once(key, job_id=job_id) as go:
        if not go:
            return None
        content = render_csv(sales_rows(week))
        name = f"reports/sales-{week}.csv"
        if default_storage.exists(name):
            default_storage.delete(name)
        name = default_storage.save(name, ContentFile(content))
        staff = list(
            get_user_model()
            .objects.filter(is_staff=True, is_active=True)
            .exclude(email="")
            .values_list("email", flat=True)
        )
        if staff:
            message = EmailMessage(
                subject=f"Sales report {week}",
                body=f"Paid orders of {week}, by product, are attached.",
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=staff,
                headers={"Message-ID": message_id(key)},
            )
            message.attach(f"sales-{week}.csv", content, "text/csv")
            try:
                message.send()
            except (smtplib.SMTPException, OSError) as exc:
                raise TransientError(f"SMTP unavailable: {exc}") from exc
        return name

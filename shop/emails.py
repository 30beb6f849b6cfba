"""The emails the jobs send. Each is keyed, so a repeated job does not send it twice.

The one honest limit (docs/guarantees.md): if a worker dies after the SMTP server accepted a
message and before its key is marked done, the job runs again and that email goes out twice;
it carries the same Message-ID both times, so a receiver that deduplicates shows it once.
"""

import logging
import smtplib

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.urls import reverse

from jobs import effects
from jobs.errors import PermanentError, Skip, TransientError
from shop.models import Customer, Order

logger = logging.getLogger(__name__)


def message_id(key: str) -> str:
    """The same email gets the same Message-ID however often it is sent (RFC 5322 allows
    it; it is the same message), so a receiver that deduplicates by it shows it once."""
    return f"<{key.replace(':', '.')}@{settings.EMAIL_MESSAGE_ID_DOMAIN}>"


def _send_once(
    *, key: str, job_id: str | None, to: str, subject: str, template: str, context: dict
) -> bool:
    message = EmailMessage(
        subject=subject,
        body=render_to_string(template, context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers={"Message-ID": message_id(key)},
    )
    with effects.once(key, job_id=job_id) as go:
        if not go:
            return False
        try:
            message.send()
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentError(f"recipient {to} refused") from exc
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                raise TransientError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
            raise PermanentError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TransientError(f"SMTP unavailable: {exc}") from exc
    logger.info("sent %s to %s", key, to)
    return True


def send_welcome_email(*, customer_id: int, job_id: str | None = None) -> bool:
    customer = Customer.objects.select_related("user").filter(pk=customer_id).first()
    if customer is None:
        raise PermanentError(f"customer {customer_id} is gone")
    return _send_once(
        key=f"welcome-email:{customer_id}",
        job_id=job_id,
        to=customer.email,
        subject="Welcome to the shop",
        template="shop/emails/welcome.txt",
        context={"customer": customer, "catalogue_url": settings.SITE_URL + reverse("catalogue")},
    )


def _order(order_id: int) -> Order:
    order = Order.objects.select_related("customer__user").filter(pk=order_id).first()
    if order is None:
        raise PermanentError(f"order {order_id} is gone")
    return order


def not_paid_reason(order: Order) -> str:
    """Why an email about a paid order does not apply to this one, in words for its customer:
    the job's outcome_reason, which their order page shows."""
    if order.status == Order.Status.PAYMENT_FAILED:
        return "the order was not paid"
    return f"the order is {order.get_status_display()}"


def send_order_confirmation(*, order_id: int, job_id: str | None = None) -> bool:
    order = _order(order_id)
    # Checked when it runs, not when it was recorded: the order may have changed since (a
    # refund and a cancel before the email went out).
    if order.status not in Order.PAID_STATUSES:
        raise Skip(not_paid_reason(order))
    return _send_once(
        key=f"order-confirmation:{order_id}",
        job_id=job_id,
        to=order.customer.email,
        subject=f"Order #{order.pk} is paid",
        template="shop/emails/order_confirmation.txt",
        context={
            "order": order,
            "lines": order.lines.select_related("product"),
            # Its page says "being prepared" until the invoice job has made it: the email does
            # not wait for the PDF.
            "invoice_url": settings.SITE_URL + reverse("order_invoice", args=[order.pk]),
        },
    )


def send_review_reminder(*, order_id: int, job_id: str | None = None) -> bool:
    order = _order(order_id)
    # Recorded with the order, an hour before it is due: whether the order was paid, or is
    # still, is known only now. Nothing to review then, and the ledger says why.
    if order.status not in Order.PAID_STATUSES:
        raise Skip(not_paid_reason(order))
    return _send_once(
        key=f"review-reminder:{order_id}",
        job_id=job_id,
        to=order.customer.email,
        subject=f"How was order #{order.pk}?",
        template="shop/emails/review_reminder.txt",
        context={"order": order},
    )

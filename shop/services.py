"""Writes on the request path. Each service is one transaction: domain rows and the jobs that
follow from them are committed together, or not at all (docs/architecture.md, "A request").

A job whose work belongs to no other module (no email, no sync) has its work here, beside
the service that records it: shipping is `ship_order` and `send_shipping_notification`.
"""

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.hashers import make_password
from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from jobs.dispatch import enqueue_all, new_job
from jobs.errors import PermanentError, Skip
from jobs.models import Job
from jobs.operations import cancel_waiting
from shop import selectors
from shop.cards import Card, default_card
from shop.clients import sms
from shop.models import Customer, Order, OrderExport, OrderLine, Product
from shop.tokens import issue_token
from shop.webhook_events import order_event_jobs


class EmailAlreadyRegistered(Exception):
    pass


class OrderRejected(Exception):
    """The order cannot be placed as asked; `errors` maps fields to messages, like a form."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


class ExportRejected(Exception):
    """The export cannot be made as asked; `errors` maps fields to messages, like a form."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


class IdempotencyKeyReused(Exception):
    """The Idempotency-Key was used before with another request body."""


class OrderNotShippable(Exception):
    """Only a paid order ships, and only once; `status` is what the order is instead."""

    def __init__(self, *, order_id: int, status: str) -> None:
        self.order_id, self.status = order_id, status
        reasons: dict[str, str] = {
            Order.Status.SHIPPED: "is shipped already",
            Order.Status.PENDING_PAYMENT: "is not paid yet",
            Order.Status.PAYMENT_FAILED: "is not paid: its payment failed",
        }
        reason = reasons.get(status, f"is not paid ({status})")
        super().__init__(f"Order #{order_id} {reason}.")


class OrderNotCancellable(Exception):
    """Only an order that has not shipped, nor failed or been cancelled, can be cancelled."""

    def __init__(self, *, order_id: int, status: str) -> None:
        self.order_id, self.status = order_id, status
        reasons: dict[str, str] = {
            Order.Status.CANCELLED: "is cancelled already",
            Order.Status.SHIPPED: "has shipped: it can no longer be cancelled",
            Order.Status.PAYMENT_FAILED: "was not paid (its payment failed): there is nothing "
            "to cancel",
        }
        reason = reasons.get(status, f"cannot be cancelled ({status})")
        super().__init__(f"Order #{order_id} {reason}.")


# The jobs a cancelled order no longer needs, if they have not run yet.
JOBS_VOID_WHEN_CANCELLED = (
    "jobs.send_review_reminder",
    "jobs.send_order_confirmation",
    "jobs.make_invoice",
)
# ... and when its payment was declined (the confirmation is only ever recorded once paid).
JOBS_VOID_WHEN_DECLINED = ("jobs.send_review_reminder",)


@dataclass
class SignUpResult:
    customer: Customer
    token: str
    jobs: list[Job]


@dataclass
class PlaceOrderResult:
    order: Order  # with its lines and their products (selectors.with_lines)
    jobs: list[Job] = field(default_factory=list)
    replayed: bool = False


@dataclass
class CancelOrderResult:
    order: Order  # with its lines and their products, and its jobs as they are now
    jobs: list[Job]  # what this cancel recorded (refund, CRM, analytics, webhooks)
    cancelled_jobs: list[Job]  # what it cancelled in the ledger (the review reminder)


@dataclass
class ShipOrderResult:
    order: Order  # with its lines and their products (selectors.with_lines)
    jobs: list[Job]


def sign_up(
    *, email: str, name: str, password: str, phone: str = "", avatar: File | None = None
) -> SignUpResult:
    """Create the user, its customer profile and API token, and record the signup's jobs.

    `phone` is an E.164 number (shop.models.phone_validator) or blank; `avatar` is an image
    that shop.avatars.clean_avatar checked and re-encoded.
    """
    # Hash before the transaction: ~0.1 s of Argon2 must not hold the database's write lock.
    password_hash = make_password(password)
    customer: Customer | None = None
    try:
        with transaction.atomic():
            customer, token = create_customer(
                email=email, name=name, password_hash=password_hash, phone=phone, avatar=avatar
            )
            jobs = enqueue_all(signup_jobs(customer))
    except BaseException as exc:
        # The transaction rolled back; an avatar file written inside it must not linger.
        if customer is not None and customer.avatar:
            customer.avatar.storage.delete(customer.avatar.name)
        if isinstance(exc, IntegrityError):
            # Two signups with one email at the same instant: the unique username decides.
            raise EmailAlreadyRegistered(email) from exc
        raise
    return SignUpResult(customer=customer, token=token, jobs=jobs)


def create_customer(
    *, email: str, name: str, password_hash: str, phone: str = "", avatar: File | None = None
) -> tuple[Customer, str]:
    """The signup's own rows (user, customer, avatar file, API token), in the caller's
    transaction; returns the customer and its token. `sign_up` adds the jobs."""
    email = email.strip().lower()
    User = get_user_model()
    if User.objects.filter(username=email).exists():
        raise EmailAlreadyRegistered(email)
    user = User.objects.create(username=email, email=email, password=password_hash)
    customer = Customer.objects.create(user=user, name=name, phone=phone)
    if avatar is not None:
        customer.avatar.save(avatar.name, avatar, save=True)
    return customer, issue_token(user)


def signup_jobs(customer: Customer) -> list[Job]:
    """What follows a signup, as unsaved jobs for `enqueue_all`."""
    jobs = [
        new_job("jobs.send_welcome_email", concerning=customer, customer_id=customer.pk),
        new_job(
            "jobs.track_analytics_event",
            concerning=customer,
            event_id=f"signed_up:{customer.pk}",
            name="signed_up",
            properties={"customer_id": customer.pk},
        ),
        new_job("jobs.sync_crm_contact", concerning=customer, customer_id=customer.pk),
    ]
    if customer.avatar:
        jobs.append(
            new_job("jobs.make_avatar_thumbnails", concerning=customer, customer_id=customer.pk)
        )
    return jobs


def request_digest(items: list[dict], card: Card | None = None) -> str:
    """What makes two requests with one Idempotency-Key the same: the skus and quantities, and
    the card unless it is the default one (so that digests from before cards still match)."""
    lines: list = sorted(
        [{"sku": i["sku"], "quantity": i["quantity"]} for i in items], key=lambda i: i["sku"]
    )
    if card is not None and card != default_card():
        lines.append({"card": card.token, "last4": card.last4})
    canonical = json.dumps(lines, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def place_order(
    *,
    customer: Customer,
    items: list[dict],
    idempotency_key: str | None = None,
    card: Card | None = None,
) -> PlaceOrderResult:
    """Reserve stock, write the order and its lines, record payment and follow-up jobs.

    `card` is what the order is charged to (shop.cards.read_card; the default test card if
    None): its brand, last four digits and token are kept, never its number. `items` are
    `{"sku": str, "quantity": int}` with validated shapes; what needs the database
    (unknown sku, stock) is checked here, inside the transaction, and refused as OrderRejected.
    The result holds all the answer shows, read inside the transaction. With an
    `idempotency_key` used before with the same items, nothing is written: the answer is the
    first one again (the order, the jobs it was answered with), `replayed`.
    """
    card = card or default_card()
    digest = request_digest(items, card)
    if idempotency_key:
        replay = _replay(customer=customer, idempotency_key=idempotency_key, digest=digest)
        if replay is not None:
            return replay
    try:
        with transaction.atomic():
            order = create_order(
                customer=customer,
                items=items,
                idempotency_key=idempotency_key,
                digest=digest,
                card=card,
            )
            jobs = enqueue_all(order_jobs(order))
            if idempotency_key:
                # Only an order placed with a key is ever answered again (`_replay`): without
                # one, this would be a write in every order for nothing.
                order.placed_job_ids = [str(job.pk) for job in jobs]
                order.save(update_fields=["placed_job_ids"])
            selectors.with_lines(order)
    except IntegrityError:
        # The same key raced in from a second request; the first one's order is the answer.
        if not idempotency_key:
            raise
        replay = _replay(customer=customer, idempotency_key=idempotency_key, digest=digest)
        if replay is None:
            raise
        return replay
    return PlaceOrderResult(order=order, jobs=jobs)


def order_jobs(order: Order) -> list[Job]:
    """What follows an order, as unsaved jobs for `enqueue_all`."""
    return [
        new_job("jobs.charge_payment", concerning=order, order_id=order.pk),
        new_job(
            "jobs.track_analytics_event",
            concerning=order,
            event_id=f"order_placed:{order.pk}",
            name="order_placed",
            properties={"order_id": order.pk, "total": str(order.total)},
        ),
        new_job("jobs.sync_crm_deal", concerning=order, order_id=order.pk),
        *order_event_jobs("order.placed", order=order),
        new_job(
            "jobs.send_review_reminder",
            concerning=order,
            eta=timezone.now() + timedelta(seconds=settings.REVIEW_REMINDER_DELAY_SECONDS),
            order_id=order.pk,
        ),
    ]


def _replay(*, customer: Customer, idempotency_key: str, digest: str) -> PlaceOrderResult | None:
    order = selectors.order_by_idempotency_key(customer, idempotency_key)
    if order is None:
        return None
    if order.request_digest != digest:
        raise IdempotencyKeyReused(idempotency_key)
    # The first answer's jobs, webhook deliveries' included (Order.placed_job_ids says why),
    # as they are now; a job purged since is left out.
    jobs = Job.objects.in_bulk(order.placed_job_ids)
    placed = [jobs[job_id] for job_id in map(uuid.UUID, order.placed_job_ids) if job_id in jobs]
    return PlaceOrderResult(order=order, jobs=placed, replayed=True)


def create_order(
    *,
    customer: Customer,
    items: list[dict],
    idempotency_key: str | None = None,
    digest: str = "",
    card: Card | None = None,
) -> Order:
    """The order's own rows (order, lines, stock reserved), in the caller's transaction.
    `place_order` adds the jobs and the idempotency replay."""
    skus = [item["sku"] for item in items]
    products = Product.objects.in_bulk(skus, field_name="sku")
    unknown = [sku for sku in skus if sku not in products]
    if unknown:
        raise OrderRejected({"items": [f"Unknown sku: {', '.join(unknown)}."]})

    card = card or default_card()
    # The total from the prices read above, so that the order is written once (an UPDATE of
    # its total after the lines was one more write in every order).
    total = sum((products[item["sku"]].price * item["quantity"] for item in items), Decimal("0.00"))
    order = Order.objects.create(
        customer=customer,
        card_brand=card.brand,
        card_last4=card.last4,
        payment_token=card.token,
        currency=products[skus[0]].currency,
        idempotency_key=idempotency_key or None,
        request_digest=digest,
        total=total,
    )
    lines = []
    for item in items:
        product = products[item["sku"]]
        # Reserve with a conditional update: stock can never go below zero, even under races.
        reserved = Product.objects.filter(pk=product.pk, stock__gte=item["quantity"]).update(
            stock=F("stock") - item["quantity"]
        )
        if not reserved:
            raise OrderRejected({"items": [f"Not enough stock for {product.sku}."]})
        lines.append(
            OrderLine(
                order=order, product=product, quantity=item["quantity"], unit_price=product.price
            )
        )
    OrderLine.objects.bulk_create(lines)
    return order


def release_stock(*, order: Order) -> None:
    """Give the order's reserved quantities back to its products, in the caller's transaction.

    For an order that will not be paid after all: a declined payment (shop.integrations.
    charge_order), a cancelled order. Call it in the transaction of the conditional update that
    moves the order out of `pending_payment`, and only when that update changed the row: it
    does so once, so the stock comes back once, and with the status or not at all.
    """
    for line in order.lines.all():
        # F(): added in the database, so concurrent reservations and releases all count.
        Product.objects.filter(pk=line.product_id).update(stock=F("stock") + line.quantity)


def ship_order(*, order_id: int, by: AbstractBaseUser) -> ShipOrderResult:
    """Mark the paid order shipped (by whom, when); record its shipping SMS and its
    `order.shipped` webhooks.

    Refused with OrderNotShippable unless the order is paid, and so for an order shipped
    already: shipping twice records no second SMS. Order.DoesNotExist if there is no order.
    """
    with transaction.atomic():
        # Conditional: of two staff shipping one order at the same moment, one ships it.
        shipped = Order.objects.filter(pk=order_id, status=Order.Status.PAID).update(
            status=Order.Status.SHIPPED, shipped_at=timezone.now(), shipped_by=by
        )
        order = Order.objects.get(pk=order_id)
        if not shipped:
            raise OrderNotShippable(order_id=order.pk, status=order.status)
        selectors.with_lines(order)
        jobs = enqueue_all(
            [
                new_job("jobs.send_shipping_notification", concerning=order, order_id=order.pk),
                *order_event_jobs("order.shipped", order=order),
            ]
        )
    return ShipOrderResult(order=order, jobs=jobs)


def cancel_order(
    *, order_id: int, by: AbstractBaseUser, reason: str = "cancelled by the customer"
) -> CancelOrderResult:
    """Cancel an order that has not shipped: it turns `cancelled` (when, by whom, why), its
    stock comes back, its waiting review reminder is cancelled in the ledger, and the jobs
    that tell the world are recorded: the refund if it was paid, the CRM deal, the analytics
    event, the `order.cancelled` webhooks. One transaction: all of it, or none.

    Refused with OrderNotCancellable for an order shipped, cancelled already (so a second
    cancel records nothing), or whose payment failed; Order.DoesNotExist if there is none.
    A charge still in flight when a pending order is cancelled is refunded by the charge job
    itself (shop.integrations.charge_order): its move to `paid` finds the order cancelled.
    """
    with transaction.atomic():
        now = timezone.now()
        cancel = {
            "status": Order.Status.CANCELLED,
            "cancelled_at": now,
            "cancelled_by": by,
            "cancel_reason": reason[:200],
        }
        # Conditional, from one status at a time, so that it is known whether it was paid:
        # pending first, then paid, so that a charge that turns it paid in between is seen
        # by the second. Of two cancels at once, or a cancel and a shipping, one wins.
        was_paid = False
        cancelled = Order.objects.filter(pk=order_id, status=Order.Status.PENDING_PAYMENT).update(
            **cancel
        )
        if not cancelled:
            cancelled = Order.objects.filter(pk=order_id, status=Order.Status.PAID).update(**cancel)
            was_paid = bool(cancelled)
        order = Order.objects.select_related("customer__user").get(pk=order_id)
        if not cancelled:
            raise OrderNotCancellable(order_id=order.pk, status=order.status)
        # Once: only the update that moved the order gets here.
        release_stock(order=order)
        voided = cancel_waiting(
            concerning=order, names=JOBS_VOID_WHEN_CANCELLED, reason="order cancelled"
        )
        jobs = []
        if was_paid:
            jobs.append(new_job("jobs.refund_payment", concerning=order, order_id=order.pk))
        jobs += [
            new_job("jobs.sync_crm_deal", concerning=order, order_id=order.pk),
            new_job(
                "jobs.track_analytics_event",
                concerning=order,
                event_id=f"order_cancelled:{order.pk}",
                name="order_cancelled",
                properties={"order_id": order.pk, "total": str(order.total), "paid": was_paid},
            ),
            *order_event_jobs("order.cancelled", order=order),
        ]
        recorded = enqueue_all(jobs)
        selectors.with_lines(order)
        selectors.with_jobs(order)
    return CancelOrderResult(order=order, jobs=recorded, cancelled_jobs=voided)


def send_shipping_notification(*, order_id: int) -> bool:
    """The work of the job ship_order records: text the customer that the order shipped.

    Once: the SMS provider sends one message per Idempotency-Key, so a job that runs twice
    sends one SMS. Sends nothing, and ends the job `skipped`, when the customer gave no mobile
    number (the phone is optional; that is not an error, and retrying would not change it).
    """
    order = Order.objects.select_related("customer").filter(pk=order_id).first()
    if order is None:
        raise PermanentError(f"order {order_id} is gone")
    if not order.customer.phone:
        raise Skip("no mobile number was given for text messages")
    sms.send_sms(
        to=order.customer.phone,
        body=f"Your order #{order.pk} has shipped and is on its way.",
        idempotency_key=f"order-{order.pk}-shipped-sms",
    )
    return True


def request_order_export(*, by: AbstractBaseUser, start: date, end: date) -> OrderExport:
    """Record a CSV export of the orders placed from `start` to `end` (days, both included,
    UTC) and its job, `jobs.export_orders` (shop.exports does the work), in one transaction.

    Refused with ExportRejected, nothing written, for a range that ends before it starts or
    spans more than EXPORT_MAX_DAYS days. `by` is the staff member asking (the views check).
    """
    errors: dict[str, list[str]] = {}
    if end < start:
        errors["end"] = ["The end must be on or after the start."]
    elif end == date.max:
        # The job asks for the orders placed before the day after the end, which has no date.
        errors["end"] = [f"The end must be before {date.max.isoformat()}."]
    elif (end - start).days + 1 > settings.EXPORT_MAX_DAYS:
        errors["end"] = [
            f"An export spans at most {settings.EXPORT_MAX_DAYS} days; "
            f"this one spans {(end - start).days + 1}."
        ]
    if errors:
        raise ExportRejected(errors)
    with transaction.atomic():
        export = OrderExport.objects.create(requested_by_id=by.pk, start=start, end=end)
        [export.job] = enqueue_all(
            [new_job("jobs.export_orders", concerning=export, export_id=export.pk)]
        )
        export.save(update_fields=["job"])
    return export

from decimal import Decimal

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.contrib.contenttypes.fields import GenericRelation
from django.core.exceptions import ValidationError
from django.core.files.storage import Storage, storages
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse

# An order's Idempotency-Key (the API's header, the checkout form's hidden field).
IDEMPOTENCY_KEY_MAX_LENGTH = 255

# E.164, the form SMS providers take: "+", country code and number, nothing else.
phone_validator = RegexValidator(
    r"^\+[1-9][0-9]{1,14}\Z",  # [0-9], not \d, which matches every script's digits
    "Enter the number in international format, without spaces: +4915112345678.",
)


def validate_static_image(path: str) -> None:
    """A product's picture is one of the shop's static files (shop/static/…)."""
    from django.contrib.staticfiles import finders

    if not path.endswith((".svg", ".png", ".jpg", ".webp")) or not finders.find(path):
        raise ValidationError(
            f"No static picture at {path!r}: give a path such as shop/products/mug-001.svg."
        )


class Customer(models.Model):
    """The shop side of a user account: display name, avatar and mobile number."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="customer"
    )
    name = models.CharField(max_length=150)
    # Optional: blank means no text messages (the shipping SMS is not sent).
    phone = models.CharField(max_length=16, blank=True, validators=[phone_validator])
    avatar = models.ImageField(upload_to="avatars/", blank=True)
    # {"64": "avatars/thumbs/…", "256": "…"}: written by the avatar job, one set per upload.
    avatar_thumbnails = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The background jobs recorded about it (jobs.dispatch.new_job's `concerning`).
    jobs = GenericRelation(
        "jobs.Job", content_type_field="concerning_type", object_id_field="concerning_id"
    )

    def __str__(self) -> str:
        return f"{self.name} <{self.user.email}>"

    @property
    def email(self) -> str:
        return self.user.email


class ApiToken(models.Model):
    """A bearer token. Only its SHA-256 digest is stored; the token itself is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"token {self.digest[:8]}… of {self.user}"


class Product(models.Model):
    sku = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    stock = models.PositiveIntegerField(default=0)
    description = models.TextField(blank=True, default="", db_default="")
    # A static file's path (shop/static/…): the pictures are the shop's own, not uploads.
    # Blank: the placeholder picture.
    image = models.CharField(
        max_length=200,
        blank=True,
        default="",
        db_default="",
        validators=[validate_static_image],
        help_text="A static file's path, e.g. shop/products/mug-001.svg; blank: a placeholder.",
    )

    PLACEHOLDER_IMAGE = "shop/products/placeholder.svg"

    class Meta:
        ordering = ["sku"]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"

    def get_absolute_url(self) -> str:
        return reverse("product_detail", args=[self.sku])

    @property
    def image_path(self) -> str:
        return self.image or self.PLACEHOLDER_IMAGE


# What a storage raises when it does not take or give back a file: a file system's OSError, an
# object store's botocore errors (no answer, a refusal). The jobs that write files retry them.
STORAGE_ERRORS: tuple[type[Exception], ...] = (OSError, BotoCoreError, ClientError)


# Read and write through these, not through the field's `.storage`: a FileField calls its
# storage callable once, when the model is defined, and keeps what it got; these follow
# STORAGES as it is now (a test that moves the media to an object store, tests/integration/
# test_s3_media.py).
def invoice_storage() -> Storage:
    """The private storage the invoices are kept in (settings.STORAGES["invoices"])."""
    return storages["invoices"]


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING_PAYMENT = "pending_payment", "pending payment"
        PAID = "paid", "paid"
        PAYMENT_FAILED = "payment_failed", "payment failed"
        SHIPPED = "shipped", "shipped"  # paid, then sent (shop.services.ship_order)
        # Called off before it shipped (shop.services.cancel_order): stock given back, a
        # payment refunded. Final.
        CANCELLED = "cancelled", "cancelled"

    # Paid, and maybe shipped since: what counts as a sale and can be reviewed.
    PAID_STATUSES = (Status.PAID, Status.SHIPPED)
    # What the customer may still cancel: anything not shipped and not ended otherwise.
    CANCELLABLE_STATUSES = (Status.PENDING_PAYMENT, Status.PAID)

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING_PAYMENT)
    total = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    currency = models.CharField(max_length=3, default="EUR")
    # The client's Idempotency-Key and a digest of the body it came with: the same key with
    # the same body replays the order, with another body it is refused.
    # NULL, not "": orders without a key must not collide in the unique constraint below.
    idempotency_key = models.CharField(  # noqa: DJ001
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH, null=True, blank=True
    )
    request_digest = models.CharField(max_length=64, blank=True)
    # The ids of the jobs the placing request answered with, in that order: a replay of the
    # request answers with these again (shop.services.place_order). Stored, not worked out
    # later: `jobs` below gains jobs recorded since (the confirmation email), and holds none of
    # the webhook deliveries' jobs, which concern no order so that the customer's page and API
    # never show staff's endpoint URLs; finding those again through the deliveries would tie
    # the replay to what each event records. One small column, written in the placing
    # transaction, is exactly the first answer; written only for an order placed with an
    # Idempotency-Key, the only kind ever replayed (empty for the others).
    placed_job_ids = models.JSONField(default=list, db_default=[], blank=True)
    # The card it is paid with, as a receipt shows it, and the gateway's token for it, which
    # the payment job charges (shop.cards): the card number itself is never stored. Blank on
    # orders placed before cards existed: they are charged as the default test card.
    card_brand = models.CharField(max_length=20, blank=True, default="", db_default="")
    card_last4 = models.CharField(max_length=4, blank=True, default="", db_default="")
    payment_token = models.CharField(max_length=64, blank=True, default="", db_default="")
    created_at = models.DateTimeField(auto_now_add=True)
    # Set together with the status by shop.services.ship_order, and by nothing else.
    shipped_at = models.DateTimeField(null=True, blank=True)
    shipped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Set together with the status by shop.services.cancel_order, and by nothing else.
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    cancel_reason = models.CharField(max_length=200, blank=True, default="", db_default="")
    # When every job about it (scheduled ones aside) had first reached a final state: set
    # once, by shop.metrics, which observes the order's completion time then.
    jobs_settled_at = models.DateTimeField(null=True, blank=True)
    # Its invoice's PDF, written by the invoice job once it is paid (shop.invoices); blank
    # until then. Private: served by shop.views.order_invoice to its customer, never by URL.
    invoice = models.FileField(storage=invoice_storage, blank=True, default="", db_default="")
    # The background jobs recorded about it (jobs.dispatch.new_job's `concerning`).
    jobs = GenericRelation(
        "jobs.Job", content_type_field="concerning_type", object_id_field="concerning_id"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "idempotency_key"], name="unique_idempotency_key_per_customer"
            )
        ]

    def __str__(self) -> str:
        return f"order #{self.pk} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("order_detail", args=[self.pk])

    @property
    def is_cancellable(self) -> bool:
        return self.status in self.CANCELLABLE_STATUSES


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product.sku}"


class Payment(models.Model):
    """The gateway's answer to charging an order: at most one per order."""

    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="payment")
    gateway_charge_id = models.CharField(max_length=64)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"payment {self.gateway_charge_id} for {self.order}"


class Refund(models.Model):
    """The gateway's answer to refunding an order's payment: at most one per payment, written
    by the refund job (shop.integrations.refund_order)."""

    payment = models.OneToOneField(Payment, on_delete=models.PROTECT, related_name="refund")
    gateway_refund_id = models.CharField(max_length=64)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"refund {self.gateway_refund_id} of {self.payment.gateway_charge_id}"


def exports_storage() -> Storage:
    """Where exports are kept (settings.STORAGES["exports"]): not the media, which debug mode
    serves to anyone; a staff-only view serves them (shop.views.download_order_export)."""
    return storages["exports"]


class OrderExport(models.Model):
    """Staff's CSV of the orders placed in a date range, written by the `jobs.export_orders`
    job in chunks (shop.exports). The chunk columns are the job's checkpoint: a run that
    takes over after a lost one starts after the last finished chunk."""

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    # Orders placed from the first day's start to the last day's end (UTC), both included.
    start = models.DateField()
    end = models.DateField()
    # The job that writes it (SET_NULL: the hourly purge may delete a succeeded job).
    job = models.OneToOneField(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Counted by the job's first run: the orders in the range, and the highest id among them,
    # so that orders placed meanwhile do not shift what the export holds.
    rows_total = models.PositiveIntegerField(null=True, blank=True)
    max_order_id = models.PositiveBigIntegerField(null=True, blank=True)
    # The checkpoint, written with the job's progress after each finished chunk.
    chunks_done = models.PositiveIntegerField(default=0)
    rows_written = models.PositiveIntegerField(default=0)
    last_order_id = models.PositiveBigIntegerField(null=True, blank=True)
    # The chunk the latest run started from when it was not the first: a run that resumed.
    resumed_from_chunk = models.PositiveIntegerField(null=True, blank=True)
    # The finished CSV: set once every chunk is written, with finished_at.
    file = models.FileField(storage=exports_storage, upload_to="orders/", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"order export #{self.pk} ({self.start} to {self.end})"

    @property
    def download_name(self) -> str:
        return f"orders-{self.start:%Y-%m-%d}-to-{self.end:%Y-%m-%d}-{self.pk}.csv"

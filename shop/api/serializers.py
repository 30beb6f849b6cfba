"""Input validation and output shapes of the JSON API (docs/api.md, "Shapes")."""

import re

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs.serializers import JobOut, StrictCharField
from shop import avatars
from shop.cards import DEFAULT_CARD_NUMBER, read_card
from shop.models import Customer, Order, OrderExport, OrderLine, Product, phone_validator

DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, as the schema says; DRF would also take "2", 2.0 and "2.0"."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


# `phone` in the schema: a number or "", as one string. drf-spectacular would write a blank-able
# field with a pattern as `oneOf: [the pattern, maxLength 0]`, which some generators turn into a
# wrapper type to build a phone number with; one pattern gives them all a plain string.
PHONE_SCHEMA = {"type": "string", "maxLength": 16, "pattern": r"^(\+[1-9]\d{1,14})?$"}


@extend_schema_field(PHONE_SCHEMA)
class PhoneField(StrictCharField):
    """A mobile number in E.164, or blank for none; spaces around it are trimmed."""

    # PHONE_SCHEMA says all: shop.api.schema.AutoSchema adds nothing from the validators.
    schema_is_complete = True

    def __init__(self, **kwargs):
        super().__init__(max_length=16, validators=[phone_validator], **kwargs)


EMAIL_MAX_LENGTH = 150


class SignupInput(serializers.Serializer):
    # The email is the username, and Django's username column holds 150 characters.
    email = serializers.EmailField(max_length=EMAIL_MAX_LENGTH)
    name = StrictCharField(max_length=150)
    password = StrictCharField(write_only=True, max_length=128, trim_whitespace=False)
    # Optional: without one, no text messages (the shipping SMS).
    phone = PhoneField(required=False, allow_blank=True)

    def validate_password(self, value: str) -> str:
        try:
            validate_password(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from exc
        return value


# The multipart signup's body: a schema component of its own, apart from the JSON body's, since
# a file has no JSON form. With one component for both, a generated client cannot tell which of
# the two to send (openapi-python-client picks by the body's class). The view validates both
# bodies with this one, so an `avatar` in a JSON body is refused (not a file), not ignored.
# (Its docstring is the component's description in the schema.)
class SignupWithAvatarInput(SignupInput):
    """The signup as a multipart form: the JSON body's fields, and an avatar image."""

    avatar = serializers.FileField(required=False, allow_empty_file=False)

    def validate_avatar(self, upload):
        try:
            return avatars.clean_avatar(upload)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from exc


class OrderItemInput(serializers.Serializer):
    sku = StrictCharField(max_length=32)
    quantity = StrictIntegerField(min_value=1, max_value=settings.ORDER_MAX_QUANTITY)


class OrderInput(serializers.Serializer):
    # many=True hands max_length to the ListSerializer it makes, which the stubs do not know.
    items = OrderItemInput(  # type: ignore[call-arg]
        many=True, allow_empty=False, max_length=settings.ORDER_MAX_LINES
    )

    # Optional: without it, the default test card (clients from before cards keep working).
    # Validated into a shop.cards.Card: the number itself goes no further.
    card_number = StrictCharField(
        required=False,
        max_length=23,
        help_text="The card to charge: in test mode one of the test cards (docs/api.md). "
        f"Digits, spaces allowed between groups; Luhn-checked. Default {DEFAULT_CARD_NUMBER}.",
    )

    def validate_card_number(self, value: str):
        try:
            return read_card(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from exc

    def validate_items(self, items: list[dict]) -> list[dict]:
        skus = [item["sku"] for item in items]
        if len(set(skus)) != len(skus):
            raise serializers.ValidationError("Each sku may appear once; add up its quantity.")
        return items


class OutputSerializer(serializers.ModelSerializer):
    """Every field of an answer is always present (docs/api.md, "Shapes"): the schema says
    required.

    (ModelSerializer makes fields with a model default optional, which is right for input only.)
    """

    def get_fields(self):
        fields = super().get_fields()
        for field in fields.values():
            field.required = True
        return fields


class CustomerOut(OutputSerializer):
    email = serializers.EmailField(source="user.email")
    phone = serializers.SerializerMethodField()
    avatar_url = serializers.SerializerMethodField()

    class Meta:
        model = Customer
        fields = ["id", "email", "name", "phone", "avatar_url"]

    def get_phone(self, customer: Customer) -> str | None:
        return customer.phone or None

    def get_avatar_url(self, customer: Customer) -> str | None:
        return customer.avatar.url if customer.avatar else None


class ProductOut(OutputSerializer):
    price = serializers.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        model = Product
        fields = ["sku", "name", "price", "currency", "stock"]


class OrderLineOut(OutputSerializer):
    sku = serializers.CharField(source="product.sku")

    class Meta:
        model = OrderLine
        fields = ["sku", "quantity", "unit_price"]


class OrderOut(OutputSerializer):
    items = OrderLineOut(source="lines", many=True)
    invoice_url = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = [
            "id",
            "status",
            "total",
            "currency",
            "items",
            "created_at",
            "shipped_at",
            "invoice_url",
        ]

    @extend_schema_field(
        {
            "type": "string",
            "format": "uri",
            "nullable": True,
            "description": "Its invoice PDF (GET /api/orders/{id}/invoice), once made; else null.",
        }
    )
    def get_invoice_url(self, order: Order) -> str | None:
        """Where the API serves its invoice PDF (GET, with the same credentials), once the
        invoice job has made it; null until then, and for an order that gets none."""
        if not order.invoice:
            return None
        path = reverse("api-order-invoice", args=[order.pk])
        request = self.context.get("request")
        # Without a request (an answer built from what a transaction wrote), the site's address.
        return request.build_absolute_uri(path) if request else settings.SITE_URL + path


class SignupOut(serializers.Serializer):
    customer = CustomerOut()
    token = serializers.CharField()
    jobs = JobOut(many=True)


class ProductsOut(serializers.Serializer):
    products = ProductOut(many=True)


class OrderWithJobsOut(serializers.Serializer):
    order = OrderOut()
    jobs = JobOut(many=True)


class DayField(serializers.DateField):
    """A day as `YYYY-MM-DD` in ASCII digits, as the schema says: DRF's ISO 8601 parsing (Django's
    parse_date) also reads "20261101", "2026-W44-7" and other scripts' digits."""

    def to_internal_value(self, value):
        if not (isinstance(value, str) and DAY.fullmatch(value)):
            self.fail("invalid", format="YYYY-MM-DD")
        return super().to_internal_value(value)


class OrderExportInput(serializers.Serializer):
    start = DayField(input_formats=["iso-8601"], help_text="The first day (UTC).")
    end = DayField(input_formats=["iso-8601"], help_text="The last day (UTC), included.")


class OrderExportOut(OutputSerializer):
    class Meta:
        model = OrderExport
        fields = ["id", "start", "end", "rows_total", "created_at", "finished_at"]


class OrderExportWithJobOut(serializers.Serializer):
    export = OrderExportOut()
    job = JobOut(help_text="Its job, `jobs.export_orders`: follow it at GET /api/jobs/<id>.")


class JobEnvelopeOut(serializers.Serializer):
    job = JobOut()


@extend_schema_field({"type": "string", "enum": ["ok", "down"]}, component_name="Liveness")
class LivenessField(serializers.ChoiceField):
    """One named enum for both dependencies (two would trip drf-spectacular's W001 warning,
    which fails `manage.py check --deploy --fail-level WARNING`)."""

    def __init__(self, **kwargs):
        super().__init__(choices=["ok", "down"], **kwargs)


class HealthOut(serializers.Serializer):
    database = LivenessField()
    broker = LivenessField()
    workers = serializers.IntegerField(min_value=0)

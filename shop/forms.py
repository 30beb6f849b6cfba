"""Forms of the HTML pages. They check shapes; what needs the database is the services' job."""

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.core.files import File
from django.http import QueryDict

from shop.avatars import clean_avatar
from shop.cards import Card, default_card, read_card
from shop.models import IDEMPOTENCY_KEY_MAX_LENGTH, phone_validator

QUANTITY_PREFIX = "quantity_"
CARD_NUMBER_FIELD = "card_number"


class SignupForm(forms.Form):
    # The email is the username, and Django's username column holds 150 characters.
    email = forms.EmailField(
        max_length=150, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    name = forms.CharField(max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    phone = forms.CharField(
        required=False,
        max_length=16,
        validators=[phone_validator],
        label="Mobile number",
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
        help_text="Optional, for a text message when your order ships. "
        "International format: +4915112345678.",
    )
    # A plain FileField: clean_avatar does the image checks once, header first, instead of
    # ImageField decoding the whole upload before we have looked at its declared size.
    avatar = forms.FileField(
        required=False,
        widget=forms.FileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
        help_text="Optional. PNG, JPEG or WebP.",
    )

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        password_validation.validate_password(password)
        return password

    def clean_avatar(self) -> File | None:
        avatar = self.cleaned_data.get("avatar")
        # AvatarTooLarge is a ValidationError too, so both land on the field.
        return clean_avatar(avatar) if avatar else None


class OrderExportForm(forms.Form):
    """Staff's order export: a range of days, as ISO dates (the service checks the range)."""

    start = forms.DateField(
        input_formats=["%Y-%m-%d"], widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        input_formats=["%Y-%m-%d"], widget=forms.DateInput(attrs={"type": "date"})
    )


class EmailAuthenticationForm(AuthenticationForm):
    """The login form: usernames are lower-cased emails, so ask for an email and match it."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Please enter a correct email and password.",
    }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        username = self.fields["username"]
        username.label = "Email"
        username.widget.input_type = "email"
        username.widget.attrs["autocomplete"] = "email"

    def clean_username(self) -> str:
        return self.cleaned_data["username"].strip().lower()


def order_items_from(data: QueryDict) -> list[dict]:
    """`quantity_<sku>` fields of the catalogue form → `[{"sku", "quantity"}]`, blanks and 0
    left out. Raises ValidationError with every problem at once."""
    items = []
    errors = []
    for name in data:
        value = data.get(name, "")
        if not name.startswith(QUANTITY_PREFIX) or not value.strip():
            continue
        sku = name.removeprefix(QUANTITY_PREFIX)
        value = value.strip()
        # ASCII digits only: int() also takes other scripts' digits, "1_0" and "+3".
        if not (value.isascii() and value.isdigit()):
            errors.append(f"{sku}: the quantity must be a whole number.")
            continue
        # More digits than the largest quantity has: out of range, without int()'s limit.
        too_long = len(value.lstrip("0")) > len(str(settings.ORDER_MAX_QUANTITY))
        quantity = settings.ORDER_MAX_QUANTITY + 1 if too_long else int(value)
        if quantity == 0:
            continue
        if not 1 <= quantity <= settings.ORDER_MAX_QUANTITY:
            errors.append(f"{sku}: the quantity must be from 1 to {settings.ORDER_MAX_QUANTITY}.")
            continue
        items.append({"sku": sku, "quantity": quantity})
    if errors:
        raise ValidationError(errors)
    if not items:
        raise ValidationError("Choose a quantity of at least one product.")
    if len(items) > settings.ORDER_MAX_LINES:
        raise ValidationError(f"An order has at most {settings.ORDER_MAX_LINES} products.")
    return items


def card_from(data: QueryDict) -> Card:
    """The card of the checkout form (shop.cards.read_card); ValidationError if it is not one.
    A form without the field (posted by a script) pays with the default test card, as the API
    does; a blank field is refused."""
    if CARD_NUMBER_FIELD not in data:
        return default_card()
    return read_card(data.get(CARD_NUMBER_FIELD, ""))


def idempotency_key_from(data: QueryDict) -> str | None:
    """The key the catalogue form was rendered with, so a double submit places one order;
    None without one. ValidationError for a key too long to keep: dropping it would let a
    second submit place a second order."""
    key = data.get("idempotency_key", "").strip()
    if len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        raise ValidationError(
            f"The form's key is longer than {IDEMPOTENCY_KEY_MAX_LENGTH} characters; "
            "order from a fresh page."
        )
    return key or None

"""Card numbers at checkout, the way a payment provider's test mode takes them.

The shop keeps no card number. What it keeps of one is what a receipt shows (brand, last four
digits) and the gateway's token for it, which the payment job hands to the gateway. In test
mode the gateway's tokens are fixed names for its test cards (shop.clients.payments), and
each test card behaves in a documented way: one is charged, one is declined, one fails with a
processing error once and is charged when the job tries again.
"""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.views.decorators.debug import sensitive_variables

from shop.clients.payments import test_mode_token

# The card an order is paid with when none is given (API clients from before cards existed).
DEFAULT_CARD_NUMBER = "4242424242424242"
# Card numbers are 12 to 19 digits (ISO/IEC 7812).
MIN_DIGITS, MAX_DIGITS = 12, 19


@dataclass(frozen=True)
class Card:
    brand: str
    last4: str
    token: str  # the gateway's token for the number: the number itself is not kept


@dataclass(frozen=True)
class SandboxCard:
    number: str
    outcome: str

    @property
    def spaced(self) -> str:
        return " ".join(self.number[i : i + 4] for i in range(0, len(self.number), 4))


# What the checkout page offers as test-mode hints, in the order it shows them.
TEST_CARDS = (
    SandboxCard("4242424242424242", "is charged: the order is paid"),
    SandboxCard("4000000000000002", "is declined: the order's payment fails"),
    SandboxCard(
        "4000000000000119",
        "fails with a processing error, then is charged when the payment job tries again",
    ),
)


@sensitive_variables("number", "digits")
def read_card(number: str) -> Card:
    """The card a customer typed: spaces and dashes between digit groups are allowed, anything
    else but digits is not, and the number must pass the Luhn check (a typo almost always
    breaks it). Raises ValidationError with a message for the field."""
    digits = number.replace(" ", "").replace("-", "")
    if not digits:
        raise ValidationError("Enter a card number.")
    if not digits.isascii() or not digits.isdigit():
        raise ValidationError("A card number has digits only (spaces between groups are fine).")
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        raise ValidationError(f"A card number has {MIN_DIGITS} to {MAX_DIGITS} digits.")
    if not luhn_valid(digits):
        raise ValidationError("This card number is not valid: check it for a typo.")
    return Card(brand=brand_of(digits), last4=digits[-4:], token=test_mode_token(digits))


def default_card() -> Card:
    return read_card(DEFAULT_CARD_NUMBER)


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every card number carries in its last digit."""
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit)
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def brand_of(digits: str) -> str:
    if digits.startswith("4"):
        return "visa"
    if 51 <= int(digits[:2]) <= 55 or 2221 <= int(digits[:4]) <= 2720:
        return "mastercard"
    if digits[:2] in ("34", "37"):
        return "amex"
    return "card"

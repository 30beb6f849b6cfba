from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings

from jobs.http import call

DECLINED = 402

# The gateway's test mode: each test card number stands for a fixed token, which the gateway
# answers in a fixed way (sandbox.views.create_charge; real providers document theirs so). A
# number that is not a test card has no token in test mode, and the gateway declines it.
TEST_CARD_TOKENS = {
    "4242424242424242": "tok_visa",
    "5555555555554444": "tok_mastercard",
    "4000000000000002": "tok_chargeDeclined",
    "4000000000000119": "tok_chargeDeclinedProcessingError",
}
NOT_A_TEST_CARD = "tok_notATestCard"
# What an order placed before cards existed is charged with.
DEFAULT_SOURCE = "tok_visa"


def test_mode_token(number: str) -> str:
    return TEST_CARD_TOKENS.get(number, NOT_A_TEST_CARD)


@dataclass(frozen=True)
class ChargeOutcome:
    charge_id: str | None  # None when the card was declined
    declined_reason: str = ""


def charge(
    *, amount: Decimal, currency: str, reference: str, idempotency_key: str, source: str
) -> ChargeOutcome:
    """Charge the card `source` (the gateway's token for it) once: the gateway answers a
    repeated Idempotency-Key with the first charge. A processing error (5xx) is a
    TransientError, so the job tries again with the same key."""
    response = call(
        "POST",
        f"{settings.PAYMENTS_URL}/charges",
        json={
            "amount": str(amount),
            "currency": currency,
            "reference": reference,
            "source": source,
        },
        headers={"Idempotency-Key": idempotency_key},
        accept_statuses=frozenset({DECLINED}),
    )
    body = response.json()
    if response.status_code == DECLINED:
        return ChargeOutcome(charge_id=None, declined_reason=body.get("detail", "declined"))
    return ChargeOutcome(charge_id=body["id"])


def find_charge(*, reference: str) -> str | None:
    """The id of the charge made for `reference`, or None if there is none; charges nothing.
    For a charge in doubt that must not be made now (its order was cancelled): retrying with
    the Idempotency-Key would charge the card if the earlier attempt never did."""
    query = urlencode({"reference": reference})
    response = call("GET", f"{settings.PAYMENTS_URL}/charges?{query}")
    found = response.json()["data"]
    return str(found[0]["id"]) if found else None


@dataclass(frozen=True)
class RefundOutcome:
    refund_id: str


def refund(*, charge_id: str, idempotency_key: str) -> RefundOutcome:
    """Give the charge's amount back, once: the gateway answers a repeated Idempotency-Key
    with the first refund. A 5xx is a TransientError (tried again with the same key); a
    charge the gateway does not know, or refunded under another key, is a PermanentError."""
    response = call(
        "POST",
        f"{settings.PAYMENTS_URL}/refunds",
        json={"charge": charge_id},
        headers={"Idempotency-Key": idempotency_key},
    )
    return RefundOutcome(refund_id=response.json()["id"])

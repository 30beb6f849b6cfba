from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from jobs.http import call

DECLINED = 402


@dataclass(frozen=True)
class ChargeOutcome:
    charge_id: str | None  # None when the card was declined
    declined_reason: str = ""


def charge(
    *, amount: Decimal, currency: str, reference: str, idempotency_key: str
) -> ChargeOutcome:
    """Charge once: the gateway answers a repeated Idempotency-Key with the first charge."""
    response = call(
        "POST",
        f"{settings.PAYMENTS_URL}/charges",
        json={"amount": str(amount), "currency": currency, "reference": reference},
        headers={"Idempotency-Key": idempotency_key},
        accept_statuses=frozenset({DECLINED}),
    )
    body = response.json()
    if response.status_code == DECLINED:
        return ChargeOutcome(charge_id=None, declined_reason=body.get("detail", "declined"))
    return ChargeOutcome(charge_id=body["id"])

from django.conf import settings

from jobs.http import call


def send_sms(*, to: str, body: str, idempotency_key: str) -> str:
    """Send once: the provider answers a repeated Idempotency-Key with the first message and
    sends nothing. Returns the provider's id of the message."""
    response = call(
        "POST",
        f"{settings.SMS_URL}/messages",
        json={"to": to, "body": body},
        headers={"Idempotency-Key": idempotency_key},
    )
    return str(response.json()["id"])

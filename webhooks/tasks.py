"""The webhooks' one job: deliver an event to an endpoint, signed, retried until it lands."""

from jobs.base import job
from webhooks import services


@job("jobs.deliver_webhook", queue="webhooks")
def deliver_webhook(*, delivery_id: str) -> dict[str, int | None]:
    return {"status_code": services.deliver(delivery_id=delivery_id)}

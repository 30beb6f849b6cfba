from typing import Any

from django.conf import settings

from jobs.http import call


def send_event(*, event_id: str, name: str, properties: dict[str, Any]) -> None:
    """The collector deduplicates by event_id, so a repeated send counts once."""
    call(
        "POST",
        f"{settings.ANALYTICS_URL}/events",
        json={"event_id": event_id, "name": name, "properties": properties},
    )

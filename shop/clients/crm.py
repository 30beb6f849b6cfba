from typing import Any
from urllib.parse import quote

from django.conf import settings

from jobs.http import call
from jobs.rate_limits import wait_for_turn


def upsert_contact(*, email: str, data: dict[str, Any]) -> None:
    """PUT by natural key: sending the same contact twice leaves one contact."""
    wait_for_turn("crm", settings.CRM_RATE_LIMIT)
    call("PUT", f"{settings.CRM_URL}/contacts/{quote(email, safe='')}", json=data)


def upsert_deal(*, deal_key: str, data: dict[str, Any]) -> None:
    wait_for_turn("crm", settings.CRM_RATE_LIMIT)
    call("PUT", f"{settings.CRM_URL}/deals/{quote(deal_key, safe='')}", json=data)

from typing import Any
from urllib.parse import quote

from django.conf import settings

from jobs.clients.http import call


def upsert_contact(*, email: str, data: dict[str, Any]) -> None:
    """PUT by natural key: sending the same contact twice leaves one contact."""
    call("PUT", f"{settings.CRM_URL}/contacts/{quote(email, safe='')}", json=data)


def upsert_deal(*, deal_key: str, data: dict[str, Any]) -> None:
    call("PUT", f"{settings.CRM_URL}/deals/{quote(deal_key, safe='')}", json=data)

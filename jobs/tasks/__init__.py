"""Job declarations, one module per family. Each task decodes ids and calls one service."""

from jobs.tasks import (
    analytics,
    crm,
    dead_letters,
    emails,
    maintenance,
    media,
    payments,
    reports,
    webhooks,
)

__all__ = [
    "analytics",
    "crm",
    "dead_letters",
    "emails",
    "maintenance",
    "media",
    "payments",
    "reports",
    "webhooks",
]

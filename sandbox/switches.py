"""Latency and failure switches of the sandbox services."""

import random
import time

from django.conf import settings
from django.db import router, transaction
from django.db.models import F

from sandbox.models import ServiceSwitch

SERVICES = tuple(settings.SANDBOX_SERVICES)


def get_switch(service: str) -> ServiceSwitch:
    defaults = settings.SANDBOX_SERVICES[service]
    switch, _ = ServiceSwitch.objects.get_or_create(service=service, defaults=defaults)
    return switch


def set_switch(
    service: str,
    *,
    latency_ms: int | None = None,
    failure_rate: float | None = None,
    fail_next: int | None = None,
) -> ServiceSwitch:
    switch = get_switch(service)
    for name, value in (
        ("latency_ms", latency_ms),
        ("failure_rate", failure_rate),
        ("fail_next", fail_next),
    ):
        if value is not None:
            setattr(switch, name, value)
    switch.save()
    return switch


def should_fail(service: str) -> bool:
    """Wait the service's latency, then say whether this request is one that fails."""
    latency, fail = latency_and_failure(service)
    time.sleep(latency)
    return fail


def latency_and_failure(service: str) -> tuple[float, bool]:
    """The service's latency in seconds, and whether this request is one that fails; for a
    caller that waits in its own way (the SMTP server's event loop)."""
    switch = get_switch(service)
    return switch.latency_ms / 1000, _fails(switch)


def _fails(switch: ServiceSwitch) -> bool:
    if switch.fail_next:
        with transaction.atomic(using=router.db_for_write(ServiceSwitch)):
            # Decrement only while above zero: N failures exactly, even with parallel calls.
            if ServiceSwitch.objects.filter(pk=switch.pk, fail_next__gt=0).update(
                fail_next=F("fail_next") - 1
            ):
                return True
    return random.random() < switch.failure_rate  # noqa: S311 - a sandbox, not security

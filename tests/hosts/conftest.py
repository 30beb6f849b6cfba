"""The cluster of hosts the tests in this folder run on (stack/hosts.py); skipped where network
namespaces cannot be made (not root, no iproute2).

HOSTS_OVERRIDES="NAME=value,NAME=value" changes the app's environment on every app host: a
clock, or a mechanism switched off to see a test fail (JOBS_LEASE_SECONDS=600: a killed
host's jobs are not taken over within the tests' two minutes)."""

import os
from collections.abc import Iterator

import pytest

from stack.hosts import Cluster, skip_reason


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    pairs = [p for p in os.environ.get("HOSTS_OVERRIDES", "").split(",") if p.strip()]
    overrides = dict(pair.strip().split("=", 1) for pair in pairs)
    with Cluster.running(
        io_workers=2,
        overrides=overrides,
        # In flight long enough for a killed host to be cut off mid-charge.
        sandbox_env={"SANDBOX_PAYMENTS_LATENCY_MS": "300"},
    ) as made:
        yield made

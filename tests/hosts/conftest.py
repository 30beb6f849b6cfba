"""The cluster of hosts the tests in this folder run on (stack/hosts.py); skipped where network
namespaces cannot be made (not root, no iproute2)."""

from collections.abc import Iterator

import pytest

from stack.hosts import Cluster, skip_reason


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    with Cluster.running(io_workers=2, sandbox_env={"SANDBOX_PAYMENTS_LATENCY_MS": "300"}) as made:
        yield made

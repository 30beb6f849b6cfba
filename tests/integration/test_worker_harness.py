"""The tests' own in-process worker (tests/conftest.py, `running_worker`)."""

import pytest

from jobs.models import Job
from sandbox.switches import set_switch
from stack.waiting import wait_until
from tests.conftest import running_worker
from tests.factories import ProductFactory, customer_with_token

pytestmark = pytest.mark.integration


def test_the_worker_finishes_the_jobs_it_runs_before_a_test_ends(
    transactional_db, live_server, mailbox, empty_queues, api_client
):
    """A test that ends while a job runs must not have its database flushed under the job:
    on PostgreSQL the flush's TRUNCATE and the job's transaction deadlocked (CI, 2026-12-07).
    Celery's testing worker stops with a cold shutdown, which leaves a thread pool's running
    jobs running."""
    _, token = customer_with_token()
    ProductFactory(sku="PEN-005", stock=5)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    set_switch("payments", latency_ms=1500)
    with running_worker():
        api_client.post(
            "/api/orders", {"items": [{"sku": "PEN-005", "quantity": 1}]}, format="json"
        )
        charge = Job.objects.get(name="jobs.charge_payment")
        wait_until(lambda: Job.objects.get(pk=charge.pk).state == "running", message="the charge")
    charge.refresh_from_db()
    assert charge.state == "succeeded"

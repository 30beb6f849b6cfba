"""What the release before the job machinery became a layer of its own left behind still runs
after the upgrade: a message it put on the broker (a deploy while jobs wait), and a job it
recorded and that died, requeued by an operator now. Job names did not change; what a job
concerns moved from two foreign keys to a generic relation (jobs/migrations/0006)."""

import json
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from jobs.models import DeadLetter, Job
from sandbox.models import CrmRecord
from shop.models import Customer, Order
from stack.waiting import wait_until
from tests.conftest import running_worker
from tests.factories import UserFactory
from webhooks.models import WebhookDelivery, WebhookEndpoint

MESSAGE = Path(__file__).parent / "previous_release" / "welcome_email_message.json"
# The last migration of each app in the previous release.
BEFORE = [
    ("jobs", "0005_job_epoch"),
    ("shop", "0001_initial"),
    ("webhooks", "0001_initial"),
    ("sandbox", "0002_webhookinbox_receivedwebhook"),
]

pytestmark = pytest.mark.integration


def test_a_message_the_previous_release_left_on_the_broker_runs(celery_worker, mailbox, broker):
    captured = json.loads(MESSAGE.read_text())
    user = get_user_model().objects.create(
        username="before@example.com", email="before@example.com"
    )
    customer = Customer.objects.create(pk=captured["customer_id"], user=user, name="Before")
    # The ledger row as the upgrade's migration leaves it: published, not started.
    job = Job.objects.create(
        id=captured["job_id"],
        name="jobs.send_welcome_email",
        kwargs={"customer_id": customer.pk},
        queue=captured["queue"],
        published_at=timezone.now(),
        concerning=customer,
    )

    broker.lpush(captured["queue"], json.dumps(captured["message"]))

    wait_until(lambda: Job.objects.get(pk=job.pk).state == "succeeded", message="the old message")
    assert [(m.to, m.subject) for m in mailbox()] == [("before@example.com", "Welcome to the shop")]
    assert [str(pk) for pk in customer.jobs.values_list("pk", flat=True)] == [captured["job_id"]]


@pytest.fixture
def previous_schema(transactional_db):
    """The database as the previous release left it; migrated forward again at the end."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    yield executor.loader.project_state(BEFORE).apps
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_a_dead_job_of_the_previous_release_is_requeued_and_runs_after_the_upgrade(
    previous_schema, live_server, empty_queues, client
):
    old = previous_schema
    user = old.get_model("auth", "User").objects.create(
        username="old@example.com", email="old@example.com"
    )
    customer = old.get_model("shop", "Customer").objects.create(user=user, name="Old")
    order = old.get_model("shop", "Order").objects.create(
        customer=customer, total="14.00", idempotency_key="checkout-1"
    )
    # Recorded under the old schema: a foreign key to the order and one to its customer.
    dead = old.get_model("jobs", "Job").objects.create(
        name="jobs.sync_crm_deal",
        kwargs={"order_id": order.pk},
        queue="crm",
        state="dead",
        attempts=6,
        order=order,
        customer=customer,
        finished_at=timezone.now(),
    )
    old.get_model("jobs", "DeadLetter").objects.create(
        job=dead,
        error="TransientError: CRM answered 503",
        attempts=6,
        first_failed_at=timezone.now(),
        failed_at=timezone.now(),
    )
    welcome = old.get_model("jobs", "Job").objects.create(
        name="jobs.send_welcome_email",
        kwargs={"customer_id": customer.pk},
        queue="critical",
        state="succeeded",
        customer=customer,
    )
    endpoint = old.get_model("webhooks", "WebhookEndpoint").objects.create(url="http://127.0.0.1/")
    delivery = old.get_model("webhooks", "WebhookDelivery").objects.create(
        endpoint=endpoint, event="order.placed", payload={"order_id": order.pk}, order=order
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    # What each row was about survives the migration.
    order, customer = Order.objects.get(pk=order.pk), Customer.objects.get(pk=customer.pk)
    assert list(order.jobs.values_list("pk", flat=True)) == [dead.pk]
    # A replay of its request answers what it answered before the upgrade: its jobs.
    assert order.placed_job_ids == [str(dead.pk)]
    assert list(customer.jobs.values_list("pk", flat=True)) == [welcome.pk]
    assert WebhookDelivery.objects.get(pk=delivery.pk).subject == order
    assert WebhookEndpoint.objects.count() == 1

    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    letter = DeadLetter.objects.get(job_id=dead.pk)
    with running_worker():
        response = client.post(
            f"/api/ops/dead-letters/{letter.pk}/requeue",
            {"reason": "upgrade"},
            content_type="application/json",
        )
        assert response.status_code == 200, response.content
        wait_until(lambda: Job.objects.get(pk=dead.pk).state == "succeeded", message="the requeue")

    assert CrmRecord.objects.filter(kind="deal", external_key=f"order-{order.pk}").count() == 1
    assert Job.objects.get(pk=dead.pk).epoch == 1

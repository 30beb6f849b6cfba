"""Delayed jobs wait in the database; the relay hands them to the workers when they fall due.
Beat's sweep is a backstop minutes apart: no test here runs beat."""

import pytest

from jobs.models import Job
from jobs.relay import publish_due
from shop.models import Order
from stack.waiting import wait_until
from tests.factories import ProductFactory, customer_with_token

pytestmark = pytest.mark.integration


def test_a_review_reminder_is_published_by_the_relay_on_time_and_emailed_once(
    celery_worker, api_client, mailbox, settings
):
    settings.REVIEW_REMINDER_DELAY_SECONDS = 3
    _, token = customer_with_token()
    ProductFactory(sku="PEN-005", stock=5)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    order_id = api_client.post(
        "/api/orders", {"items": [{"sku": "PEN-005", "quantity": 1}]}, format="json"
    ).json()["order"]["id"]
    wait_until(lambda: Order.objects.get(pk=order_id).status == "paid", message="payment")
    reminder = Order.objects.get(pk=order_id).jobs.get(name="jobs.send_review_reminder")
    assert reminder.state == "scheduled"

    # The relay beside the worker (tests/conftest.py; `relay_outbox` in a deployment) publishes
    # it when due, no later than a relay round and a moment.
    wait_until(lambda: Job.objects.get(pk=reminder.pk).state == "succeeded", message="reminder")
    reminder.refresh_from_db()
    lateness = (reminder.published_at - reminder.eta).total_seconds()
    assert 0 <= lateness < settings.JOBS_RELAY_INTERVAL_SECONDS + 1
    assert publish_due() == 0  # claimed once: a second sweep publishes nothing

    reminders = [m for m in mailbox() if m.subject == f"How was order #{order_id}?"]
    assert len(reminders) == 1
    assert Job.objects.get(pk=reminder.pk).attempts == 1


def test_a_reminder_not_yet_due_stays_in_the_database(celery_worker, api_client):
    _, token = customer_with_token()
    ProductFactory(sku="PEN-005", stock=5)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    api_client.post("/api/orders", {"items": [{"sku": "PEN-005", "quantity": 1}]}, format="json")

    assert publish_due() == 0
    assert Job.objects.get(name="jobs.send_review_reminder").state == "scheduled"

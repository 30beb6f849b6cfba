"""Delayed jobs wait in the database; the due-job sweep (run by beat) hands them to workers."""

import pytest

from config.celery import app
from jobs.models import Job
from jobs.relay import publish_due
from shop.models import Order
from stack.waiting import wait_until
from tests.factories import ProductFactory, customer_with_token

pytestmark = pytest.mark.integration


def test_a_due_review_reminder_is_published_once_and_emailed_once(
    celery_worker, api_client, mailbox, settings
):
    settings.REVIEW_REMINDER_DELAY_SECONDS = 0
    _, token = customer_with_token()
    ProductFactory(sku="PEN-005", stock=5)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    order_id = api_client.post(
        "/api/orders", {"items": [{"sku": "PEN-005", "quantity": 1}]}, format="json"
    ).json()["order"]["id"]
    wait_until(lambda: Order.objects.get(pk=order_id).status == "paid", message="payment")
    reminder = Order.objects.get(pk=order_id).jobs.get(name="jobs.send_review_reminder")
    assert reminder.state == "scheduled"

    # What beat does every few seconds, through the broker like beat would.
    app.send_task("jobs.publish_due_jobs", queue="default")
    wait_until(lambda: Job.objects.get(pk=reminder.pk).state == "succeeded", message="reminder")
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

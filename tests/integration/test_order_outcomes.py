"""An order's jobs end in business terms, on a real worker over the real broker, with the
sandboxes answering over HTTP: a declined card ends its payment job `declined` with the
gateway's reason, the review request of the unpaid order is `skipped` when it falls due, and
the customer's order page tells it so in words, with nothing technical, while staff see the
jobs. A CRM outage shows the customer a delay, never the error's text or the dead letter's
own job."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from jobs.models import DeadLetter, Job
from sandbox.switches import set_switch
from shop.models import Order
from shop.tasks import sync_crm_deal
from stack.waiting import wait_until
from tests.factories import ProductFactory, customer_with_token

pytestmark = pytest.mark.integration

DECLINED_CARD = "4000 0000 0000 0002"

# What no customer's page may show: an internal URL, an error's text, the machinery's own
# job, a queue's name, a job's technical name.
TECHNICAL = (
    "http://",
    "Error",
    "answered",
    "record_dead_letter",
    "dead_letter",
    "critical",
    "bulk",
    "crm",
    "jobs.",
    "charge_payment",
)


def place(customer_token: str, card: str | None = None) -> int:
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {customer_token}")
    body: dict[str, object] = {"items": [{"sku": "MUG-001", "quantity": 1}]}
    if card:
        body["card_number"] = card
    response = api.post("/api/orders", body, format="json")
    assert response.status_code == 201, response.content
    return int(response.json()["order"]["id"])


def job_of(order_id: int, name: str) -> Job:
    return Job.objects.get(name=name, concerning_id=order_id)


def timeline_of(client: Client, order_id: int) -> str:
    response = client.get(f"/orders/{order_id}/timeline")
    assert response.status_code == 200
    return response.content.decode()


def staff_client() -> Client:
    staff = get_user_model().objects.create_user(
        username="ops@example.com", email="ops@example.com", is_staff=True
    )
    client = Client()
    client.force_login(staff)
    return client


def test_a_declined_card_is_declined_and_the_unpaid_orders_review_request_skipped(
    celery_worker, settings
):
    settings.REVIEW_REMINDER_DELAY_SECONDS = 2
    customer, token = customer_with_token()
    ProductFactory(sku="MUG-001", stock=5)
    order_id = place(token, DECLINED_CARD)

    wait_until(
        lambda: job_of(order_id, "jobs.charge_payment").is_final,
        message="the charge to end",
    )

    charge = job_of(order_id, "jobs.charge_payment")
    reminder = job_of(order_id, "jobs.send_review_reminder")
    assert (charge.state, charge.outcome_reason) == ("declined", "card declined")
    # The decline cancelled the waiting review request, in its transaction: it never runs.
    assert (reminder.state, reminder.outcome_reason) == ("cancelled", "payment declined")
    assert (charge.attempts, reminder.attempts) == (1, 0)  # an end, not a failure: no retry
    assert charge.last_error == reminder.last_error == ""
    assert not DeadLetter.objects.exists()
    # The decline's own writes were committed before the job ended so.
    assert Order.objects.get(pk=order_id).status == "payment_failed"
    assert not Job.objects.filter(name="jobs.send_order_confirmation").exists()

    browser = Client()
    browser.force_login(customer.user)
    page = timeline_of(browser, order_id)
    assert "Declined: your card was declined" in page
    assert "Review request" in page
    assert "Cancelled: payment declined" in page
    assert "Paid" not in page
    assert "Sent" not in page
    assert [word for word in TECHNICAL if word in page] == []

    staff_page = timeline_of(staff_client(), order_id)
    assert "charge_payment" in staff_page
    assert "state-declined" in staff_page
    assert "card declined" in staff_page  # the outcome_reason, as the ledger has it


def test_a_crm_outage_shows_the_customer_a_delay_and_staff_the_error(celery_worker, monkeypatch):
    monkeypatch.setattr(sync_crm_deal, "max_retries", 1)  # a short budget for a short test
    set_switch("crm", failure_rate=1.0)
    customer, token = customer_with_token()
    ProductFactory(sku="MUG-001", stock=5)
    order_id = place(token)
    browser = Client()
    browser.force_login(customer.user)

    wait_until(
        lambda: job_of(order_id, "jobs.sync_crm_deal").state == "retrying",
        message="the CRM sync to wait for its retry",
    )
    page = timeline_of(browser, order_id)
    assert "Shop records updated" in page
    assert "Delayed, trying again at" in page
    assert [word for word in TECHNICAL if word in page] == []

    wait_until(lambda: DeadLetter.objects.filter(status="open").exists(), message="dead letter")
    wait_until(
        lambda: Job.objects.filter(
            name="jobs.record_dead_letter", concerning_id=order_id, state="succeeded"
        ).exists(),
        message="the dead letter's own job",
    )
    page = timeline_of(browser, order_id)
    assert "Could not be completed" in page
    assert [word for word in TECHNICAL if word in page] == []
    whole_page = browser.get(f"/orders/{order_id}").content.decode()
    assert "record_dead_letter" not in whole_page
    assert "http://127.0.0.1" not in whole_page

    # The API tells the customer the same, without the error's text or the machinery's job.
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    jobs = api.get(f"/api/orders/{order_id}").json()["jobs"]
    crm_job = next(job for job in jobs if job["name"] == "jobs.sync_crm_deal")
    assert crm_job["state"] == "dead"
    assert {job["last_error"] for job in jobs} == {""}
    assert "jobs.record_dead_letter" not in {job["name"] for job in jobs}
    housekeeping = Job.objects.get(name="jobs.record_dead_letter", concerning_id=order_id)
    assert api.get(f"/api/jobs/{housekeeping.pk}").status_code == 404
    assert api.get(f"/api/jobs/{crm_job['id']}").json()["job"]["last_error"] == ""

    # Staff see the technical detail on the same page and over the API.
    staff = staff_client()
    staff_page = timeline_of(staff, order_id)
    assert "sync_crm_deal" in staff_page
    assert "503" in staff_page
    assert "record_dead_letter" in staff_page
    staff_api = APIClient()
    staff_api.force_authenticate(get_user_model().objects.get(username="ops@example.com"))
    assert "503" in staff_api.get(f"/api/jobs/{crm_job['id']}").json()["job"]["last_error"]

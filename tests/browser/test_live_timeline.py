"""The customer's open order page keeps following its jobs once everything has finished: a
job that comes back to life (staff requeue a dead letter, a lost run is taken up again) is
shown without a reload (jobs/static/jobs/live.js: every 1.5 s while moving, every 10 s once
settled, never stopping). The ledger is changed by hand here, as a requeue would change it;
tests/browser/test_journeys.py does the same through the dashboard with a real worker."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job
from shop import services
from shop.models import Customer, Order, Product
from tests.factories import CustomerFactory

pytestmark = pytest.mark.browser

# live.js looks every 10 s once settled; a round trip and a margin on top.
SETTLED_POLL_MS = 10_000 + 5_000


def order_of(email: str) -> Order:
    """A new order, waiting for its payment (no worker runs), of a new customer."""
    customer: Customer = CustomerFactory.create(user__email=email, user__username=email)
    Product.objects.create(sku="MUG-001", name="Enamel camping mug", price="14.00", stock=50)
    return services.place_order(customer=customer, items=[{"sku": "MUG-001", "quantity": 1}]).order


@contextmanager
def open_order_page(browser, live_server, order: Order) -> Iterator:
    """The order's page, opened by its customer after logging in, marked so that a reload
    would show (`window.notReloaded`)."""
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto("/login")
    page.fill("input[name=username]", order.customer.user.email)
    page.fill("input[name=password]", "a-long-enough-password")
    page.click("form button[type=submit]")
    page.wait_for_url("**/")
    page.goto(f"/orders/{order.pk}")
    page.evaluate("() => { window.notReloaded = true; }")
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def settled_order(transactional_db, empty_queues) -> Order:
    """A paid order whose jobs all finished, the CRM sync as a dead letter (no worker runs)."""
    order = order_of("follow@example.com")
    Order.objects.filter(pk=order.pk).update(status=Order.Status.PAID)
    jobs = Job.objects.filter(concerning_id=order.pk).exclude(state=Job.State.SCHEDULED)
    jobs.update(state=Job.State.SUCCEEDED, finished_at=timezone.now())
    jobs.filter(name="jobs.sync_crm_deal").update(
        state=Job.State.DEAD, last_error="TransientError: PUT http://127.0.0.1:8300/… answered 503"
    )
    return order


def test_the_open_order_page_follows_a_job_that_comes_back_to_life(
    browser, live_server, settled_order
):
    with open_order_page(browser, live_server, settled_order) as page:
        records = page.locator("#timeline ol.steps li", has_text="Shop records updated")
        assert "Could not be completed" in records.inner_text()
        page.wait_for_selector("#timeline [data-final=true]")

        # Staff requeue it; its first try meets the CRM still down, and it waits to try again.
        crm = Job.objects.filter(concerning_id=settled_order.pk, name="jobs.sync_crm_deal")
        retry_at = timezone.now() + timedelta(minutes=5)
        crm.update(state=Job.State.RETRYING, finished_at=None, next_attempt_at=retry_at)
        records.locator(".tone-delayed").wait_for(timeout=SETTLED_POLL_MS)
        assert "Delayed, trying again at" in records.inner_text()
        page.wait_for_selector("#timeline [data-final=false]")

        # And it succeeds: followed too, now at the fast pace.
        crm.update(state=Job.State.SUCCEEDED, finished_at=timezone.now(), next_attempt_at=None)
        records.locator(".tone-done").wait_for(timeout=5_000)
        page.wait_for_selector("#timeline [data-final=true]")
        assert page.evaluate("() => window.notReloaded === true")  # the same page, never reloaded


@pytest.fixture
def pending_order(transactional_db, empty_queues) -> Order:
    """An order waiting for its payment, of a customer who can cancel it."""
    return order_of("decline@example.com")


def test_the_open_order_page_stops_offering_cancel_once_the_order_cannot_be(
    browser, live_server, pending_order
):
    with open_order_page(browser, live_server, pending_order) as page:
        cancel = page.locator("details.cancel-order")
        assert cancel.is_visible()

        # Its card is declined, as the charge job records it: nothing is left to cancel.
        Order.objects.filter(pk=pending_order.pk).update(status=Order.Status.PAYMENT_FAILED)
        page.locator("#timeline .status-payment_failed").wait_for(timeout=5_000)

        cancel.wait_for(state="hidden", timeout=5_000)
        assert page.evaluate("() => window.notReloaded === true")

"""The database goes away in the middle of a job and comes back."""

import time

import pytest

from jobs.models import Job
from sandbox.models import Charge
from sandbox.switches import set_switch
from shop.models import Order, Payment
from stack.waiting import wait_until
from tests.faults.helpers import database_outage

pytestmark = pytest.mark.faults


def test_a_job_whose_database_goes_away_retries_and_succeeds_once_it_is_back(stack, catalogue):
    app = stack()
    app.start_web(), app.start_mail(), app.start_relay()
    worker = app.start_worker(concurrency=1)
    customer = app.sign_up("db-outage@example.com")
    wait_until(
        lambda: not Job.objects.exclude(state="succeeded").exists(),
        timeout=30,
        message="the signup's jobs",
    )
    set_switch("payments", latency_ms=2000)
    order_id = app.order(customer["token"], "MUG-001")["order"]["id"]
    charge = Order.objects.get(pk=order_id).jobs.get(name="jobs.charge_payment")
    wait_until(
        lambda: Job.objects.get(pk=charge.pk).state == "running",
        timeout=30,
        message="the charge to start",
    )

    with database_outage():
        # The gateway answers while the database is away: recording the payment fails.
        time.sleep(8)
    set_switch("payments", latency_ms=0)

    wait_until(
        lambda: Job.objects.get(pk=charge.pk).state == "succeeded",
        timeout=90,
        message="the charge to succeed once the database is back",
    )
    wait_until(
        lambda: not Job.objects.exclude(state__in=["succeeded", "scheduled"]).exists(),
        timeout=60,
        message="every job to finish",
    )
    charge.refresh_from_db()
    assert charge.attempts >= 2
    assert Order.objects.get(pk=order_id).status == "paid"
    assert Charge.objects.filter(reference=f"order-{order_id}").count() == 1
    assert Payment.objects.filter(order_id=order_id).count() == 1
    assert [m.subject for m in app.emails()].count(f"Order #{order_id} is paid") == 1
    assert worker.alive()
    assert "OperationalError" in worker.output()  # the outage really hit the job

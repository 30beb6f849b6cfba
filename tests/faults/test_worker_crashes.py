"""Workers killed, stopped and restarted in the middle of jobs: nothing lost, each effect once."""

import os
import signal
import time

import pytest

from jobs.models import DeadLetter, Job
from sandbox.models import AnalyticsEvent, Charge, ReceivedRequest
from sandbox.switches import set_switch
from shop.models import Order, Payment
from stack.procfs import children_of
from stack.waiting import wait_until
from tests.faults.helpers import wait_for_every_job_final

pytestmark = pytest.mark.faults


def charge_job(order_id: int) -> Job:
    return Order.objects.get(pk=order_id).jobs.get(name="jobs.charge_payment")


def order_with_a_running_charge(app, token: str, *, gateway_latency_ms: int) -> int:
    """Place an order and return once its charge is in flight at a gateway this slow."""
    set_switch("payments", latency_ms=gateway_latency_ms)
    order_id = app.order(token, "MUG-001")["order"]["id"]
    wait_until(
        lambda: charge_job(order_id).state == "running", timeout=30, message="a running charge"
    )
    return order_id


def assert_each_order_paid_once(app, order_ids: list[int]) -> None:
    subjects = [m.subject for m in app.emails()]
    for order_id in order_ids:
        assert Order.objects.get(pk=order_id).status == "paid"
        assert Charge.objects.filter(reference=f"order-{order_id}").count() == 1
        assert Payment.objects.filter(order_id=order_id).count() == 1
        assert subjects.count(f"Order #{order_id} is paid") == 1
        assert AnalyticsEvent.objects.filter(event_id=f"order_placed:{order_id}").count() == 1


def test_sigkill_of_the_pool_child_mid_job_runs_it_again_with_one_effect(stack, catalogue):
    app = stack()
    app.start_web(), app.start_mail(), app.start_relay()
    worker = app.start_worker(concurrency=1)
    customer = app.sign_up("kill-child@example.com")
    set_switch("payments", latency_ms=3000)  # the charge is in flight for 3 s

    order_id = app.order(customer["token"], "MUG-001")["order"]["id"]
    wait_until(
        lambda: charge_job(order_id).state == "running", timeout=30, message="a running charge"
    )
    [child] = children_of(worker.pid)
    os.kill(child, signal.SIGKILL)
    set_switch("payments", latency_ms=0)

    wait_until(
        lambda: Order.objects.get(pk=order_id).status == "paid",
        timeout=60,
        message="the order to be paid after the redelivery",
    )
    wait_for_every_job_final(timeout=30, message="the confirmation")
    job = charge_job(order_id)
    assert job.state == "succeeded"
    assert job.attempts == 2  # the killed run and the one after it
    assert job.lost_runs == 1
    # The gateway was asked twice with the same Idempotency-Key and charged once.
    assert ReceivedRequest.objects.filter(service="payments").count() == 2
    assert_each_order_paid_once(app, [order_id])
    assert not DeadLetter.objects.exists()


def test_sigkill_of_the_whole_worker_then_a_restart_loses_nothing(stack, catalogue):
    # A long visibility timeout: if the runs cut short came back only through it (not through
    # their leases and the relay), the test would time out.
    app = stack(BROKER_VISIBILITY_TIMEOUT_SECONDS=300)
    app.start_web(), app.start_mail(), app.start_relay()
    worker = app.start_worker(concurrency=2)
    customer = app.sign_up("kill-all@example.com")
    set_switch("payments", latency_ms=1500)
    order_ids = [app.order(customer["token"], "MUG-001")["order"]["id"] for _ in range(6)]
    wait_until(
        lambda: Job.objects.filter(state="running").count() >= 2,
        timeout=30,
        message="jobs in the middle of running",
    )

    worker.signal_group(signal.SIGKILL)  # the main process and its pool, no goodbyes
    worker.wait(10)
    set_switch("payments", latency_ms=0)
    app.start_worker("w2", concurrency=2)

    wait_for_every_job_final(timeout=60, message="every job to finish after the restart")
    assert set(Job.objects.exclude(state="scheduled").values_list("state", flat=True)) == {
        "succeeded"
    }
    assert_each_order_paid_once(app, order_ids)
    assert [m.subject for m in app.emails()].count("Welcome to the shop") == 1
    assert Job.objects.filter(lost_runs__gt=0).exists()  # some runs really were cut short


def test_sigterm_lets_a_running_job_finish_before_the_worker_exits(stack, catalogue):
    app = stack()
    app.start_web(), app.start_mail(), app.start_relay()
    worker = app.start_worker(concurrency=1)
    customer = app.sign_up("deploy@example.com")
    wait_for_every_job_final(timeout=30, message="the signup's jobs")
    order_id = order_with_a_running_charge(
        app, customer["token"], gateway_latency_ms=1500
    )  # shorter than the 3 s soft shutdown

    worker.popen.send_signal(signal.SIGTERM)
    assert worker.wait(15) == 0

    job = charge_job(order_id)
    assert job.state == "succeeded"
    assert job.attempts == 1
    assert Order.objects.get(pk=order_id).status == "paid"


def test_sigterm_hands_a_job_longer_than_the_soft_shutdown_back_at_once(stack, catalogue):
    # A long visibility timeout: if the job came back only through it, the test would time out.
    app = stack(BROKER_VISIBILITY_TIMEOUT_SECONDS=300)
    app.start_web(), app.start_mail(), app.start_relay()
    worker = app.start_worker(concurrency=1)
    customer = app.sign_up("long-deploy@example.com")
    wait_for_every_job_final(timeout=30, message="the signup's jobs")
    order_id = order_with_a_running_charge(
        app, customer["token"], gateway_latency_ms=5000
    )  # longer than the 3 s soft shutdown

    stopped_at = time.monotonic()
    worker.popen.send_signal(signal.SIGTERM)
    worker.wait(30)
    assert time.monotonic() - stopped_at < 15  # a deploy does not wait for the job
    set_switch("payments", latency_ms=0)
    app.start_worker("w2", concurrency=1)

    wait_until(
        lambda: charge_job(order_id).state == "succeeded",
        timeout=60,
        message="the handed-back job to run (long before the 300 s visibility timeout)",
    )
    job = charge_job(order_id)
    assert job.lost_runs == 0  # handed back by the stopping worker, not found as a lost run
    assert job.attempts == 2
    wait_for_every_job_final(timeout=30, message="the confirmation")
    assert_each_order_paid_once(app, [order_id])


def test_a_job_that_kills_its_worker_every_time_ends_as_one_dead_letter(stack, catalogue):
    app = stack()
    app.start_web(), app.start_mail(), app.start_relay()
    worker = app.start_worker(concurrency=1)
    customer = app.sign_up("poison-job@example.com")
    wait_for_every_job_final(timeout=30, message="the signup's jobs")
    set_switch("payments", latency_ms=4000)
    order_id = app.order(customer["token"], "MUG-001")["order"]["id"]

    for run in (1, 2, 3):  # the job's every run dies, as if it crashed its process
        wait_until(
            lambda run=run: (
                charge_job(order_id).state == "running" and charge_job(order_id).attempts == run
            ),
            timeout=60,
            message=f"run {run}",
        )
        os.kill(*children_of(worker.pid), signal.SIGKILL)

    wait_until(lambda: DeadLetter.objects.exists(), timeout=60, message="the dead letter")
    time.sleep(3)  # long enough for any further delivery to show up
    job = charge_job(order_id)
    assert job.state == "dead"
    assert job.attempts == 3  # not a fourth run
    assert job.lost_runs == 3
    letter = DeadLetter.objects.get()
    assert letter.job_id == job.pk
    assert "died 3 times" in letter.error
    assert worker.alive()
    assert Charge.objects.filter(reference=f"order-{order_id}").count() <= 1

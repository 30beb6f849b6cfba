"""The broker stops, restarts or never hears of a job: the ledger and the relay make up for it."""

import time

import pytest

from jobs.models import Job
from sandbox.models import AnalyticsEvent, Charge, ReceivedRequest
from sandbox.switches import set_switch
from shop.models import Customer, Order, Payment
from stack.waiting import wait_until
from tests.faults.helpers import wait_for_every_job_final

pytestmark = pytest.mark.faults


def test_requests_while_the_broker_is_down_are_answered_and_their_jobs_run_once_it_is_back(
    stack, catalogue
):
    app = stack()
    app.start_web(), app.start_mail(), app.start_relay()
    app.start_worker(concurrency=2)
    app.kill_broker()

    timings, customers, order_ids = [], [], []
    for n in range(3):
        started = time.monotonic()
        customers.append(app.sign_up(f"outage{n}@example.com"))
        order_ids.append(app.order(customers[-1]["token"], "MUG-001")["order"]["id"])
        timings.append(time.monotonic() - started)
    health = app.get("/api/health")

    assert max(timings) < 5, timings  # answered while the broker is down, without hanging
    assert health.status_code == 503
    assert health.json()["broker"] == "down"
    assert Job.objects.filter(state="queued").count() == 18  # 3 x (3 signup + 3 order) jobs
    # None reached a broker: a publisher stamps its rows only once the broker has taken them.
    wait_until(
        lambda: not Job.objects.filter(published_at__isnull=False).exists(),
        timeout=5,
        message="no row stamped published",
    )

    app.start_broker()  # same port, same append-only file
    wait_for_every_job_final(timeout=90, message="every job to run once the broker is back")

    assert app.get("/api/health").json()["broker"] == "ok"
    assert set(Job.objects.exclude(state="scheduled").values_list("state", flat=True)) == {
        "succeeded"
    }
    subjects = [m.subject for m in app.emails()]
    assert subjects.count("Welcome to the shop") == 3
    for order_id in order_ids:
        assert Order.objects.get(pk=order_id).status == "paid"
        assert Charge.objects.filter(reference=f"order-{order_id}").count() == 1
        assert subjects.count(f"Order #{order_id} is paid") == 1
    assert set(Job.objects.exclude(state="scheduled").values_list("attempts", flat=True)) == {1}


def test_a_process_killed_between_commit_and_publish_is_made_good_by_the_relay(stack):
    app = stack()
    app.start_web(), app.start_mail()
    app.start_worker(concurrency=2)

    app.run_script("crash_after_commit", "crash@example.com", check_exit=3)

    customer = Customer.objects.get(user__email="crash@example.com")
    jobs = customer.jobs.all()
    assert jobs.count() == 3  # committed with the signup ...
    assert not jobs.filter(published_at__isnull=False).exists()  # ... and never published
    time.sleep(2)
    assert not jobs.filter(state="succeeded").exists()  # nothing runs without the relay

    app.start_relay()
    wait_for_every_job_final(timeout=60, message="the relay to publish and the jobs to run")

    assert set(jobs.values_list("state", flat=True)) == {"succeeded"}
    assert set(jobs.values_list("attempts", flat=True)) == {1}
    assert [m.to for m in app.emails()] == ["crash@example.com"]


def test_a_broker_killed_with_1000_jobs_queued_loses_none_and_runs_none_twice(stack):
    app = stack()
    app.start_web()
    app.run_script("enqueue_events", "1000")
    assert app.broker_client().llen("bulk") == 1000
    time.sleep(1.5)  # appendfsync everysec: let the last second reach the disk

    app.kill_broker()
    app.start_broker()
    assert app.broker_client().llen("bulk") == 1000
    app.start_worker(pool="threads", concurrency=8, queues="bulk")

    wait_until(
        lambda: not Job.objects.exclude(state="succeeded").exists(),
        timeout=240,
        message="1,000 jobs to run",
        interval=1,
    )
    assert AnalyticsEvent.objects.count() == 1000
    assert ReceivedRequest.objects.filter(service="analytics").count() == 1000  # none twice
    assert set(Job.objects.values_list("attempts", flat=True)) == {1}


def test_health_metrics_and_orders_answer_fast_while_the_broker_is_frozen(stack, catalogue):
    """A frozen broker accepts connections and never answers: nothing a user or a monitor asks
    waits for it, however long it stays so (the publish pause is 1 s here; this is 8 s)."""
    app = stack()
    app.start_web(), app.start_mail(), app.start_relay()
    app.start_worker(pool="threads", concurrency=2)
    customer = app.sign_up("frozen@example.com")
    wait_for_every_job_final(message="the signup's jobs")
    wait_until(lambda: app.get("/api/health").json()["workers"] == 1, message="the heartbeat")

    app.freeze_broker()
    try:
        timings: dict[str, list[float]] = {"health": [], "metrics": [], "order": []}
        order_ids = []
        for _ in range(4):
            started = time.monotonic()
            health = app.get("/api/health")
            timings["health"].append(time.monotonic() - started)
            started = time.monotonic()
            metrics = app.get("/metrics")
            timings["metrics"].append(time.monotonic() - started)
            started = time.monotonic()
            order_ids.append(app.order(customer["token"], "MUG-001")["order"]["id"])
            timings["order"].append(time.monotonic() - started)
            time.sleep(2)
    finally:
        app.thaw_broker()

    assert max(max(times) for times in timings.values()) < 1, timings
    assert health.status_code == 503
    assert health.json() == {"database": "ok", "broker": "down", "workers": 1}
    assert metrics.status_code == 200
    assert "shop_jobs_workers_online 1.0" in metrics.text
    wait_for_every_job_final(timeout=60, message="the orders' jobs once the broker is back")
    for order_id in order_ids:
        assert Order.objects.get(pk=order_id).status == "paid"
        assert Charge.objects.filter(reference=f"order-{order_id}").count() == 1


# Well below the visibility timeout (120 s here): a job that came back only through it, or a
# worker that did not reconnect, would time the test out.
BROKER_LOST_BOUND_SECONDS = 30
BROKER_OUTAGE_SECONDS = 5


def test_a_broker_lost_during_a_charge_still_charges_once_and_the_worker_serves_again(
    stack, catalogue
):
    """The broker is SIGKILLed while an order's charge is in flight at the gateway, and comes
    back 5 s later from its append-only file. A prefork worker that notices the loss while the
    run goes on cancels it (it could not acknowledge it:
    worker_cancel_long_running_tasks_on_connection_loss); the lease of the cancelled run runs
    out and the relay publishes the job again, and the gateway's Idempotency-Key makes the
    second run's call charge nothing more. A worker that notices only after the run ended
    loses nothing. Either way, what the customer sees: the order paid once, one confirmation,
    and the next order paid too, well within the broker's visibility timeout."""
    app = stack()
    app.start_web(), app.start_mail(), app.start_relay()
    worker = app.start_worker(concurrency=1)
    customer = app.sign_up("broker-lost@example.com")
    wait_for_every_job_final(message="the signup's jobs")
    set_switch("payments", latency_ms=3000)
    order_id = app.order(customer["token"], "MUG-001")["order"]["id"]
    charge = Order.objects.get(pk=order_id).jobs.get(name="jobs.charge_payment")
    wait_until(lambda: Job.objects.get(pk=charge.pk).state == "running", message="the charge")

    lost_at = time.monotonic()
    app.kill_broker()
    time.sleep(BROKER_OUTAGE_SECONDS)  # the outage; nothing is asserted over it
    set_switch("payments", latency_ms=0)
    app.start_broker()  # same port, same append-only file

    def left(since: float = lost_at) -> float:
        return BROKER_LOST_BOUND_SECONDS - (time.monotonic() - since)

    wait_for_every_job_final(timeout=left(), message="the order's jobs after the outage")
    second_id = app.order(customer["token"], "MUG-001")["order"]["id"]
    wait_for_every_job_final(timeout=left(), message="the worker to serve the next order")
    assert time.monotonic() - lost_at < BROKER_LOST_BOUND_SECONDS

    assert worker.alive()
    subjects = [m.subject for m in app.emails()]
    for paid in (order_id, second_id):
        assert Order.objects.get(pk=paid).status == "paid"
        assert Charge.objects.filter(reference=f"order-{paid}").count() == 1
        assert Payment.objects.filter(order_id=paid).count() == 1
        assert subjects.count(f"Order #{paid} is paid") == 1
    assert app.duplicate_deliveries() == 0  # not even a repeat the mailbox filed away
    assert set(Job.objects.exclude(state="scheduled").values_list("state", flat=True)) == {
        "succeeded"
    }

"""Messages that arrive twice, four times at once, or should never have been sent."""

import os
import pickle

import pytest
from kombu import Connection

from jobs.models import Job
from sandbox.models import Charge, ReceivedRequest
from sandbox.switches import set_switch
from shop.models import Order, Payment
from stack.waiting import wait_until
from tests.faults.helpers import wait_for_every_job_final

pytestmark = pytest.mark.faults


def deliveries_of(app, job_id) -> int:
    return app.logs_of_workers().count(f"[{job_id}] received")


def assert_paid_once(app, order_id: int) -> None:
    assert Order.objects.get(pk=order_id).status == "paid"
    assert Charge.objects.filter(reference=f"order-{order_id}").count() == 1
    assert Payment.objects.filter(order_id=order_id).count() == 1
    assert [m.subject for m in app.emails()].count(f"Order #{order_id} is paid") == 1


def test_a_job_slower_than_the_visibility_timeout_runs_once(stack, catalogue):
    # Settings that break the rule on purpose: Redis redelivers the job while it still runs.
    app = stack(
        BROKER_VISIBILITY_TIMEOUT_SECONDS=4,
        JOBS_SOFT_TIME_LIMIT=20,
        JOBS_TIME_LIMIT=25,
        JOBS_LEASE_SECONDS=30,
        THIRD_PARTY_TIMEOUT_SECONDS=30,
        BROKER_RESTORE_INTERVAL_SECONDS=1,
    )
    app.start_web(), app.start_mail(), app.start_relay()
    app.start_worker("w1")
    app.start_worker("w2")
    customer = app.sign_up("slow@example.com")
    set_switch("payments", latency_ms=9000)

    order_id = app.order(customer["token"], "MUG-001")["order"]["id"]
    charge = Order.objects.get(pk=order_id).jobs.get(name="jobs.charge_payment")
    wait_until(
        lambda: deliveries_of(app, charge.pk) >= 2,
        timeout=30,
        message="Redis to deliver the running job a second time",
    )
    set_switch("payments", latency_ms=0)
    wait_for_every_job_final(timeout=90, message="the jobs to finish")

    charge.refresh_from_db()
    assert charge.state == "succeeded"
    assert charge.attempts == 1  # the second delivery was turned away: the first run held it
    assert ReceivedRequest.objects.filter(service="payments").count() == 1
    assert_paid_once(app, order_id)


def test_the_same_order_job_delivered_to_four_workers_at_once_has_one_effect(stack, catalogue):
    app = stack()
    app.start_web(), app.start_mail(), app.start_relay()
    for name in ("w1", "w2", "w3", "w4"):
        app.start_worker(name)
    customer = app.sign_up("four@example.com")
    wait_for_every_job_final(timeout=30, message="the signup's jobs")
    set_switch("payments", latency_ms=1000)

    done = app.run_script("place_order_published_n_times", customer["token"], "MUG-001", "4")
    charge = Job.objects.get(pk=done.stdout.strip())
    wait_until(lambda: deliveries_of(app, charge.pk) >= 4, timeout=30, message="four deliveries")
    wait_for_every_job_final(timeout=60, message="the jobs to finish")

    charge.refresh_from_db()
    assert charge.state == "succeeded"
    assert charge.attempts == 1
    assert ReceivedRequest.objects.filter(service="payments").count() == 1
    assert_paid_once(app, int(charge.concerning_id))


class Detonator:
    """Unpickling this makes a directory: proof that pickle content was executed."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_poison_messages_are_refused_and_the_worker_keeps_serving(stack, tmp_path):
    app = stack()
    app.start_web(), app.start_mail(), app.start_relay()
    worker = app.start_worker(queues="default,critical,bulk,crm")
    marker = tmp_path / "pickle-was-executed"

    def headers(task: str, task_id: str) -> dict:
        return {"lang": "py", "task": task, "id": task_id, "root_id": task_id, "retries": 0}

    with Connection(app.env["CELERY_BROKER_URL"]) as connection:
        producer = connection.Producer()
        producer.publish(
            pickle.dumps(((Detonator(str(marker)),), {}, {})),
            content_type="application/x-python-serialize",
            content_encoding="binary",
            routing_key="default",
            headers=headers("jobs.publish_due_jobs", "poison-pickle"),
        )
        producer.publish(
            b'{"this is": not json',
            content_type="application/json",
            content_encoding="utf-8",
            routing_key="default",
            headers=headers("jobs.publish_due_jobs", "poison-json"),
        )
        producer.publish(
            [[], {}, {}],
            serializer="json",
            routing_key="default",
            headers=headers("jobs.drop_all_tables", "poison-unknown"),
        )
    wait_until(
        lambda: "drop_all_tables" in worker.output(), timeout=30, message="the worker to see them"
    )

    app.sign_up("after-poison@example.com")
    wait_for_every_job_final(timeout=30, message="the worker to go on serving")

    assert not marker.exists()
    assert worker.alive()
    assert set(Job.objects.values_list("state", flat=True)) == {"succeeded"}
    assert [m.to for m in app.emails()] == ["after-poison@example.com"]
    log = worker.output()
    assert "Refusing to deserialize untrusted content of type pickle" in log
    assert "Received unregistered task of type 'jobs.drop_all_tables'" in log
    client = app.broker_client()
    assert client.llen("default") == 0  # refused for good, not redelivered in a loop
    assert client.zcard("unacked_index") == 0

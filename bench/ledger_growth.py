"""8. Ledger growth: what the ledger's history costs the requests and sweeps that run all day.

The same operations are timed against an empty ledger, then against one filled with finished
jobs (1,000,000 at full size; written by one SQL statement per 100,000 rows, as old history
would be, not through the ORM), then against the empty ledger again (the baseline is both
empty runs together), side by side in one run: an order (POST /api/orders), the
relay's sweep and the due-jobs sweep (called in this process, as the relay calls them), the
ops API's stats, the /ops/ dashboard and /metrics, the admin's list of jobs, and the newest
jobs of a queue the history holds none of (the dashboard's and the admin's queue filter:
found by walking the history newest first, it would be read to its end). Each filled ÷ empty
ratio must stay within MAX_RATIO: the figures the dashboard and the metrics show come from
counts the database keeps and from index ranges, not from counting the table
(jobs.operations.job_counts), and the lists from indexes read in their order.
"""

import http.client
import json
import statistics
import time
from collections.abc import Callable

from bench.harness import SKU, Bench
from bench.sections import Size

# Finished rows the filled ledger holds, by size.
ROWS = {"tiny": 20_000, "full": 1_000_000}
# Timed calls of each operation, per ledger, taken in turns (each operation once, then again).
SAMPLES = {"tiny": 40, "full": 100}
CHUNK = 100_000
PAGE_OF_ORDERS = 20  # four jobs or more each: more than the dashboard's 50 recent jobs
MAX_RATIO = 1.2
OPERATIONS = (
    "order",
    "relay_sweep",
    "due_sweep",
    "ops_stats",
    "dashboard",
    "metrics",
    "admin_jobs",
    "dashboard_queue",
    "admin_jobs_queue",
)
RARE_QUEUE = "media"  # the filled history is all analytics events, on `bulk`
METRICS_TOKEN = "bench-metrics-token"  # the bench's own stack (bench.harness)


def ledger_growth(bench: Bench, size: Size) -> dict:
    from django.db import connection

    bench.set_latencies({})
    timed = _operations(bench)
    samples = SAMPLES[size.name]
    rows = ROWS[size.name]
    # Empty, filled, empty again: the empty ledger measured before and after the filled one,
    # so that a machine that grows busier or quieter over the run (it is shared) does not
    # pass for the ledger's cost.
    before = _empty(timed, samples)
    started = time.monotonic()
    _fill(rows)
    fill_s = time.monotonic() - started
    filled = _measure(timed, samples)
    plans = _plans() if connection.vendor == "sqlite" else {}
    started = time.monotonic()
    bench.purge()
    purge_s = time.monotonic() - started
    after = _empty(timed, samples)
    empty = {name: before[name] + after[name] for name in OPERATIONS}
    bench.purge()
    return {
        "rows": rows,
        "samples": samples,
        "fill_s": fill_s,
        "purge_s": purge_s,
        "empty_ms": {name: statistics.median(times) for name, times in empty.items()},
        "empty_before_ms": {name: statistics.median(times) for name, times in before.items()},
        "empty_after_ms": {name: statistics.median(times) for name, times in after.items()},
        "filled_ms": {name: statistics.median(times) for name, times in filled.items()},
        "ratios": {
            name: statistics.median(filled[name]) / statistics.median(empty[name])
            for name in OPERATIONS
        },
        "plans": plans,
    }


def _empty(timed: dict[str, Callable[[], object]], samples: int) -> dict[str, list[float]]:
    # A page of recent jobs first, as on any day: the dashboard lists the newest 50, and an
    # empty one renders less than a filled one, whatever the ledger holds behind it.
    for _ in range(PAGE_OF_ORDERS):
        timed["order"]()
    return _measure(timed, samples)


def _measure(timed: dict[str, Callable[[], object]], samples: int) -> dict[str, list[float]]:
    """Each operation `samples` times, in turns, so that a slow moment of the machine falls on
    all of them alike; milliseconds."""
    for call in timed.values():  # warm: connections open, templates compiled
        call()
    times: dict[str, list[float]] = {name: [] for name in timed}
    for _ in range(samples):
        _settle()
        for name, call in timed.items():
            started = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - started) * 1000)
    _settle()
    return times


def _settle() -> None:
    """End the orders' jobs as if a worker had run them (no worker runs here), between turns
    and untimed: the backlog stays one order's jobs in both ledgers, so that what differs is
    the ledger's history alone (an unrun backlog growing over the run made the later, filled
    measurement slower by itself)."""
    from django.utils import timezone

    from jobs.models import LIVE_STATES, Job, state_is

    Job.objects.filter(state_is(*LIVE_STATES)).update(
        state=Job.State.SUCCEEDED, finished_at=timezone.now()
    )


def _operations(bench: Bench) -> dict[str, Callable[[], object]]:
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.sessions.backends.db import SessionStore

    from jobs import relay
    from shop.tokens import issue_token

    # A superuser: the admin's list of jobs asks for the permission to view them.
    staff, _ = get_user_model().objects.get_or_create(
        username="ledger-bench-staff", defaults={"is_staff": True, "is_superuser": True}
    )
    session = SessionStore()
    session.update(
        {
            SESSION_KEY: str(staff.pk),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: staff.get_session_auth_hash(),
        }
    )
    session.create()
    web = http.client.HTTPConnection("127.0.0.1", bench.ports["web"], timeout=60)
    customer = bench.customers[0].token
    staff_token = issue_token(staff)
    order = json.dumps({"items": [{"sku": SKU, "quantity": 1}]}).encode()
    cookie = {"Cookie": f"sessionid={session.session_key}"}

    def call(method: str, path: str, headers: dict[str, str], body: bytes | None = None) -> None:
        try:
            web.request(method, path, body=body, headers=headers)
            response = web.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # gunicorn closes a connection idle for its keep-alive (a few seconds): the fill and
            # the purge take longer on PostgreSQL. Connect again (http.client does, once
            # closed) and send the request again; nothing was taken.
            web.close()
            web.request(method, path, body=body, headers=headers)
            response = web.getresponse()
        response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path} answered {response.status}")

    return {
        "order": lambda: call(
            "POST",
            "/api/orders",
            {"Authorization": f"Bearer {customer}", "Content-Type": "application/json"},
            order,
        ),
        "relay_sweep": lambda: relay.relay(),
        "due_sweep": lambda: relay.publish_due(),
        "ops_stats": lambda: call(
            "GET", "/api/ops/stats", {"Authorization": f"Bearer {staff_token}"}
        ),
        "dashboard": lambda: call("GET", "/ops/", cookie),
        "metrics": lambda: call("GET", "/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"}),
        "admin_jobs": lambda: call("GET", "/admin/jobs/job/", cookie),
        "dashboard_queue": lambda: call("GET", f"/ops/?queue={RARE_QUEUE}", cookie),
        "admin_jobs_queue": lambda: call(
            "GET", f"/admin/jobs/job/?queue__exact={RARE_QUEUE}", cookie
        ),
    }


def _fill(rows: int) -> None:
    """`rows` succeeded jobs, finished from two minutes to months ago (none in "the last
    minute"), with the arguments of an analytics event; one INSERT per CHUNK rows. The count
    triggers run as they would for any insert."""
    from django.db import connection, transaction

    columns = (
        "id, name, kwargs, queue, state, attempts, retries, lost_runs, epoch, publishes,"
        " stalled_reason, last_error, outcome_reason, request_id, concerning_id, lease_holder,"
        " created_at, published_at, started_at, finished_at"
    )
    kwargs = '{"event_id": "fill", "name": "order_placed", "properties": {"order_id": 1}}'
    if connection.vendor == "sqlite":
        at = "datetime('now', '-' || (120 + i) || ' seconds')"
        sql = (  # constants only
            "WITH RECURSIVE g(i) AS (SELECT %s UNION ALL SELECT i + 1 FROM g WHERE i < %s)"  # noqa: S608
            f" INSERT INTO jobs_job ({columns})"
            " SELECT lower(hex(randomblob(16))), 'jobs.track_analytics_event', %s, 'bulk',"
            f" 'succeeded', 1, 0, 0, 0, 1, '', '', '', '', '', '', {at}, {at}, {at}, {at}"
            " FROM g"
        )
    else:
        at = "now() - make_interval(secs => 120 + i)"
        sql = (  # constants only
            f"INSERT INTO jobs_job ({columns})"  # noqa: S608
            " SELECT gen_random_uuid(), 'jobs.track_analytics_event', %s::jsonb, 'bulk',"
            f" 'succeeded', 1, 0, 0, 0, 1, '', '', '', '', '', '', {at}, {at}, {at}, {at}"
            " FROM generate_series(%s, %s) AS i"
        )
    for start in range(0, rows, CHUNK):
        end = min(start + CHUNK, rows) - 1
        params: list[int | str] = (
            [start, end, kwargs] if connection.vendor == "sqlite" else [kwargs, start, end]
        )
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE jobs_job")  # what autovacuum does after such an insert


def _plans() -> dict[str, str]:
    """SQLite's plans for the stats' queries on the filled ledger (for the record)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from jobs import operations

    with CaptureQueriesContext(connection) as queries:
        operations.stats()
    plans = {}
    with connection.cursor() as cursor:
        for query in queries.captured_queries:
            if '"jobs_job"' in query["sql"]:
                cursor.execute(f"EXPLAIN QUERY PLAN {query['sql']}")
                plans[query["sql"]] = " / ".join(row[-1] for row in cursor.fetchall())
    return plans


def table(ledger: dict) -> list[str]:
    lines = [
        "",
        f"8. Ledger growth: empty (before and after) vs {ledger['rows']:,} finished jobs "
        f"(medians of {ledger['samples']} calls each; filled in {ledger['fill_s']:.0f} s, "
        f"purged in {ledger['purge_s']:.0f} s)",
        f"   {'':24}{'empty':>12}{'(before':>10}{'after)':>10}{'filled':>12}{'ratio':>10}",
    ]
    for name in ledger["ratios"]:  # results of an older run may have fewer
        before, after = ledger["empty_before_ms"][name], ledger["empty_after_ms"][name]
        lines.append(
            f"   {name.replace('_', ' '):24}{ledger['empty_ms'][name]:>10.1f}ms"
            f"{before:>10.1f}{after:>10.1f}"
            f"{ledger['filled_ms'][name]:>10.1f}ms{ledger['ratios'][name]:>9.2f}×"
        )
    return lines


def targets(results: dict) -> list[dict]:
    ledger = results.get("ledger")
    if not ledger:
        return []
    return [
        {
            "target": f"ledger of {ledger['rows']:,} ÷ empty, {name.replace('_', ' ')}",
            "value": ratio,
            "goal": f"≤ {MAX_RATIO}",
            "met": ratio <= MAX_RATIO,
        }
        for name, ratio in ledger["ratios"].items()
    ]


def broken(results: dict) -> list[str]:
    """Ratios over MAX_RATIO at full size, which fail the run. At tiny size (CI's smoke test,
    a few milliseconds timed a few times on a shared machine) they are reported, not failed."""
    ledger = results.get("ledger")
    if not ledger or results.get("size") == "tiny":
        return []
    return [name for name, ratio in ledger["ratios"].items() if ratio > MAX_RATIO]

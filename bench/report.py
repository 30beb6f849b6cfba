"""The benchmarks' outputs: one table on stdout, bench/results/latest.json, and a chart."""

import json
import math
from pathlib import Path

from bench.harness import CLIENTS


def pickup_p50_vs_bare(pickup: dict, probe: str) -> float:
    """The probe's idle p50 ÷ bare Celery's idle p50 (medians over the rounds)."""
    return pickup[probe]["idle"]["p50"]["median"] / pickup["bare"]["idle"]["p50"]["median"]


def _ms(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.1f} ms" if value < 100 else f"{value:,.0f} ms"


# Section 2's CPU per job, in the order printed.
CPU_WAYS = (
    ("app_noop", "the app, no-op jobs"),
    ("bare", "bare Celery, no-op jobs"),
    ("common_noop", "the common way, no-op jobs"),
    ("app", "the app, the analytics job"),
    ("common", "the common way, the analytics job"),
)


def _spread(spread: dict, unit: str = "") -> str:
    median, low, high = spread["median"], spread["low"], spread["high"]
    if spread["rounds"] == 1:
        return f"{median:,.2f}{unit}"
    return f"{median:,.2f}{unit} ({low:,.2f} to {high:,.2f})"


def table(results: dict) -> str:
    lines: list[str] = []
    out = lines.append
    machine = results["machine"]
    out(
        f"shop + jobs benchmarks · size {results['size']} · {results['rounds']} rounds · "
        f"{results['started_at']} · commit {machine['commit']}"
    )
    out(
        f"machine: {machine['cores']} cores ({machine['cpu']}), {machine['memory_gib']} GiB · "
        f"Python {machine['python']} · Django {machine['django']} · Celery {machine['celery']} · "
        f"{machine['broker']} · {machine['database']} · sandboxes: "
        f"{machine.get('sandbox_database', 'the same database')}"
    )
    for rerun in results.get("reruns", []):
        out(
            f"re-run: {', '.join(rerun['sections'])} at {rerun['started_at']}, "
            f"commit {rerun['commit']}"
        )
    out("figures: median over rounds (lowest to highest); ratios are taken round by round")

    latency = results.get("latency")
    if latency:
        out("")
        out("1. Request latency (sandboxes: email 300, CRM 500, analytics 150, payment 400 ms)")
        out(f"   {'':24}{'p50':>12}{'p99':>12}{'':4}{'p50':>12}{'p99':>12}")
        out(f"   {'':24}{'1 client':>24}{'':4}{f'{CLIENTS} clients':>24}")
        names = {
            "queued": "queued (the app)",
            "bare": "bare write (floor)",
            "sync": "synchronous",
            "common": "common way (.delay())",
        }
        for endpoint in ("orders", "signup"):
            out(f"   {endpoint}")
            for variant, name in names.items():
                one = latency[endpoint]["1"][variant]
                many = latency[endpoint][str(CLIENTS)][variant]
                out(
                    f"     {name:22}{_ms(one['p50']['median']):>12}{_ms(one['p99']['median']):>12}"
                    f"{'':4}{_ms(many['p50']['median']):>12}{_ms(many['p99']['median']):>12}"
                )
            for ratio_name, value in latency_ratios(latency, endpoint).items():
                out(f"     {ratio_name:40} {_spread(value, '×')}")

    machinery = results.get("machinery")
    if machinery:
        rates = machinery["rates"]
        out("")
        out(
            f"2. Job machinery: jobs/s drained by {machinery['worker_processes']} worker "
            f"processes, {machinery['jobs']} jobs of {machinery['message_bytes']} B, "
            "sandboxes at 0 ms"
        )
        out("     the machinery alone, no-op jobs:")
        out(f"     {'  the app (ledger, retry base)':40} {_spread(rates['app_noop'], '/s')}")
        out(f"     {'  bare Celery, same settings':40} {_spread(rates['bare'], '/s')}")
        out(f"     {'  the app ÷ bare Celery':40} {_spread(machinery['app_noop_vs_bare'], '×')}")
        out("     the analytics job (posts to the sandbox collector):")
        out(f"     {'  the app':40} {_spread(rates['app'], '/s')}")
        out(f"     {'  the app ÷ bare Celery no-ops':40} {_spread(machinery['app_vs_bare'], '×')}")
        cpu = machinery.get("cpu_ms_per_job")  # measured since 2026-12-06
        if cpu:
            out("     CPU per job in the worker processes (user + system, ms):")
            for way, name in CPU_WAYS:
                out(f"     {'  ' + name:40} {_spread(cpu[way], ' ms')}")
            ratio = machinery["app_noop_cpu_vs_bare"]
            out(f"     {'  the app ÷ bare Celery, no-op jobs':40} {_spread(ratio, '×')}")
            ratio = machinery["app_noop_cpu_vs_common_noop"]
            out(f"     {'  the app ÷ the common way, no-op jobs':40} {_spread(ratio, '×')}")
        database_cpu = machinery.get("database_cpu_ms_per_job")  # PostgreSQL, since 2026-12-07
        if database_cpu:
            out("     CPU per job in the PostgreSQL server (user + system, ms):")
            for way, name in CPU_WAYS:
                out(f"     {'  ' + name:40} {_spread(database_cpu[way], ' ms')}")
            ratio = machinery["app_noop_cpu_with_database_vs_bare"]
            name = "  workers and server, the app ÷ bare"
            out(f"     {name:40} {_spread(ratio, '×')}")
        broker = machinery["broker"]
        out(
            f"     raw broker, one client: LPUSH {broker['push_per_s']:,.0f}/s, BRPOP "
            f"{broker['pop_per_s']:,.0f}/s; pipelined LPUSH {broker['pipelined_push_per_s']:,.0f}/s"
        )
        out("")
        out("3. The common way (prefork, results for every task, .delay() in the request)")
        out(f"     {'no-op jobs':40} {_spread(rates['common_noop'], '/s')}")
        ratio = machinery["app_noop_vs_common_noop"]
        out(f"     {'  the app ÷ the common way':40} {_spread(ratio, '×')}")
        out(f"     {'the analytics job':40} {_spread(rates['common'], '/s')}")
        out(f"     {'  the app ÷ the common way':40} {_spread(machinery['app_vs_common'], '×')}")
        if latency:
            one = latency["orders"]["1"]
            ratio = one["common"]["p50"]["median"] / one["queued"]["p50"]["median"]
            out(f"     {'order p50, common way ÷ the app':40} {ratio:,.2f}×")

    io = results.get("io")
    if io:
        out("")
        out(f"4. I/O-bound throughput, third parties at {io['latency_ms']} ms")
        for row in io["io"]:
            pool = f"{row['pool']} ×{row['concurrency']}"
            out(
                f"     {pool:14} {_spread(row['per_s'], ' jobs/s'):34} of a Little's-law limit "
                f"of {row['littles_law_limit']:.0f}/s: {_spread(row['of_limit'])}"
            )
        for row in io["media"]:
            pool = f"{row['pool']} ×{row['concurrency']}"
            out(f"     thumbnails, {pool:14} {_spread(row['per_s'], ' avatars/s')}")

    pickup = results.get("pickup")
    if pickup:
        out("")
        out("5. Pickup latency (ledger record, or apply_async, to job start)")
        ways = (
            ("app", "app, a ledger job"),
            ("app_orders", "app, an order's jobs"),
            ("bare", "bare Celery"),
        )
        for way, name in ways:
            for condition in ("idle", "half_load"):
                row = pickup[way][condition]
                # How loaded the machine was meanwhile (results before 2026-12-07 do not say).
                busy = row.get("cores_busy")
                busy_text = f", {busy['median']:.2f} cores busy" if busy else ""
                if row.get("retried"):
                    busy_text += f", {row['retried']} started by a later attempt left out"
                out(
                    f"     {name:21} {condition.replace('_', ' '):10} "
                    f"p50 {_ms(row['p50']['median']):>9}  p99 {_ms(row['p99']['median']):>9}"
                    f"  ({row['probes']} jobs{busy_text})"
                )
        for way, name in ways[:2]:
            ratio = pickup_p50_vs_bare(pickup, way)
            out(f"     p50 ÷ bare Celery's, {name:21} idle       {ratio:.2f} ×")
            for condition in ("idle", "half_load"):
                ratio = _spread(pickup[f"{way}_vs_bare_p99"][condition], "×")
                out(f"     p99 ÷ bare Celery's, {name:21} {condition.replace('_', ' '):10} {ratio}")
        # The order's jobs one by one: which of them waits (older results have no breakdown).
        for condition in ("idle", "half_load"):
            by_job = pickup["app_orders"][condition].get("by_job", {})
            for job, row in sorted(by_job.items()):
                out(
                    f"       {job:31} {condition.replace('_', ' '):10} p50 {_ms(row['p50']):>9}"
                    f"  p99 {_ms(row['p99']):>9}  ({row['n']} jobs)"
                )

    spike = results.get("spike")
    if spike:
        out("")
        out(
            f"6. Spike: {spike['orders']} orders by {CLIENTS} clients in "
            f"{spike['burst_seconds']:.1f} s ({spike['orders_per_s']:.0f}/s), drained in "
            f"{spike['drain_seconds']:.0f} s"
        )
        out(
            f"     API p50/p99 idle {_ms(spike['idle']['p50'])} / {_ms(spike['idle']['p99'])}, "
            f"during the burst {_ms(spike['burst']['p50'])} / {_ms(spike['burst']['p99'])}"
        )
        jobs = spike["jobs"]
        out(
            f"     jobs: {jobs['succeeded']} succeeded, {jobs['dead']} dead "
            f"({spike['dead_letters']} dead letters), {jobs['scheduled']} scheduled for later, "
            f"{spike['lost']} lost; request errors {spike['errors']}"
        )
        effects = ", ".join(
            f"{name} {e['seen']}/{e['expected']}" for name, e in spike["effects"].items()
        )
        out(f"     effects at the third parties: {effects}")
        if "messages" in spike:  # results from before the count was kept have none
            sent = spike["messages"]
            out(
                f"     broker messages: {sent['sent']:,} sent for {sent['jobs_published']:,} "
                "published jobs (more would be the relay publishing again)"
            )

    footprint = results.get("footprint")
    if footprint:
        out("")
        out("7. Footprint")
        out(f"     broker memory per queued job      {footprint['broker_bytes_per_job']:,.0f} B")
        at_request = sum(footprint["rows_per_order_at_request"].values())
        after = sum(footprint["rows_per_order_after_jobs"].values())
        out(
            f"     rows written per order            {at_request:.1f} in the request, "
            f"{after:.1f} once its jobs ran"
        )
        if spike:
            out(
                f"     worker RSS after the spike        "
                f"{spike['worker_rss_after'] / 2**20:,.0f} MiB "
                f"(before: {spike['worker_rss_before'] / 2**20:,.0f} MiB)"
            )

    if results.get("ledger"):
        from bench.ledger_growth import table as ledger_table

        lines.extend(ledger_table(results["ledger"]))

    if results.get("hosts"):
        from bench.scale_out import table as hosts_table

        lines.extend(hosts_table(results["hosts"]))

    out("")
    out("Targets")
    for row in results["targets"]:
        mark = "met    " if row["met"] else "NOT MET"
        value = row["value"]
        shown = f"{value:,.2f}" if isinstance(value, float) else str(value)
        out(f"  {mark}  {row['target']:58} {shown:>10}  (goal {row['goal']})")
    return "\n".join(lines)


def latency_ratios(latency: dict, endpoint: str) -> dict[str, dict]:
    from bench.stats import Spread

    def ratio(clients: str, top: str, bottom: str, quantile: str) -> dict:
        a = latency[endpoint][clients][top][f"{quantile}_by_round"]
        b = latency[endpoint][clients][bottom][f"{quantile}_by_round"]
        return Spread.of([x / y for x, y in zip(a, b, strict=True)]).as_dict()

    many = str(CLIENTS)
    return {
        "queued ÷ bare, p50, 1 client": ratio("1", "queued", "bare", "p50"),
        f"queued ÷ bare, p99, {many} clients": ratio(many, "queued", "bare", "p99"),
        "synchronous ÷ queued, p50, 1 client": ratio("1", "sync", "queued", "p50"),
    }


def read(folder: Path, size: str) -> dict:
    """The last results of this size, for `--update`."""
    path = folder / f"{_name(size)}.json"
    if not path.exists():
        raise SystemExit(f"--update: no results at {path} to update; run without it first")
    return json.loads(path.read_text())


def _name(size: str) -> str:
    return "latest" if size == "full" else f"latest-{size}"


def write(results: dict, folder: Path, size: str) -> tuple[Path, Path]:
    """latest.json and latest.png for the full size (docs/performance.md's figures), latest-SIZE.*
    for the others, so that a smoke run does not overwrite them."""
    folder.mkdir(parents=True, exist_ok=True)
    name = _name(size)
    data = folder / f"{name}.json"
    data.write_text(json.dumps(results, indent=2, default=float) + "\n")
    chart_path = folder / f"{name}.png"
    chart(results, chart_path)
    return data, chart_path


def chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [key for key in ("spike", "latency", "machinery") if results.get(key)]
    if (results.get("hosts") or {}).get("rows"):
        panels.append("hosts")
    if not panels:
        return
    figure, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
    for axis, key in zip(axes[0], panels, strict=True):
        if key == "spike":
            spike = results["spike"]
            times = [row[0] for row in spike["depth"]]
            axis.plot(times, [row[1] for row in spike["depth"]], label="ledger: jobs not done")
            axis.plot(times, [row[2] for row in spike["depth"]], label="broker: messages")
            axis.axvline(spike["burst_seconds"], color="grey", linestyle="--", label="burst ends")
            axis.set_title(f"Spike: {spike['orders']} orders, backlog until drained")
            axis.set_xlabel("seconds")
            axis.set_ylabel("jobs")
            axis.legend()
        elif key == "latency":
            one = results["latency"]["orders"]["1"]
            names = ["bare", "queued", "common", "sync"]
            values = [one[name]["p50"]["median"] for name in names]
            axis.bar(["bare write", "queued (app)", "common way", "synchronous"], values)
            axis.set_yscale("log")
            axis.set_ylabel("ms, log scale")
            axis.set_title("POST /api/orders p50, 1 client")
            for n, value in enumerate(values):
                axis.annotate(_ms(value), (n, value), ha="center", va="bottom")
        elif key == "hosts":
            from bench.scale_out import draw

            draw(axis, results["hosts"])
        else:
            rates = results["machinery"]["rates"]
            ways = [
                ("bare", "bare Celery\nno-op"),
                ("app_noop", "the app\nno-op"),
                ("common_noop", "common way\nno-op"),
                ("app", "the app\nanalytics"),
                ("common", "common way\nanalytics"),
            ]
            values = [rates[key]["median"] for key, _ in ways]
            axis.bar([label for _, label in ways], values)
            axis.set_ylabel("jobs/s")
            axis.set_title(
                f"Drain rate, {results['machinery']['worker_processes']} worker processes"
            )
            for n, value in enumerate(values):
                axis.annotate(f"{value:,.0f}/s", (n, value), ha="center", va="bottom")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)

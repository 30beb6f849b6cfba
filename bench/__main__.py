"""`python -m bench` (`make bench`): start the stack on loopback, run the benchmarks, print
one table, write bench/results/latest.json and latest.png.

    python -m bench                      # the full run: bench/results/latest.json and .png
    python -m bench --size tiny          # CI's smoke test: every benchmark, small and quick
    python -m bench --only latency,spike     (results of other sizes: latest-tiny.json, ...)
    python -m bench --only footprint --update    # re-run sections into the last results

Performance targets are printed as met or not met and never fail the run; a lost job does
(exit status 1), as does a request the app answered with an error, or a drain rate that
measured nothing (NaN).
"""

import argparse
import math
import os
import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

SECTIONS = ("latency", "machinery", "io", "pickup", "spike", "footprint", "ledger", "hosts")


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    from bench import ledger_growth, report, scale_out, sections
    from bench.harness import CLIENTS, Bench
    from bench.load import Load

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(sections.SIZES), default="full")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument(
        "--update",
        action="store_true",
        help="keep the other sections of the last results of this size; re-run only --only",
    )
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    size = sections.SIZES[args.size]
    only = with_what_they_measure_against(only)

    # A `kill` stops the stack too (the `finally` of Bench.running), as Ctrl-C does: left
    # running, its workers and web processes would hold their database connections.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    started_at = datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    results: dict = {"size": size.name, "rounds": size.rounds, "started_at": started_at}
    if args.update:
        results = report.read(args.output, size.name)
        for name in only:
            results.pop(name, None)
            results.get("errors", {}).pop(name, None)
    with Bench.running() as bench:
        machine = bench.machine()
        if args.update:
            # Said in the table: which sections were measured later, at which commit.
            rerun = {"sections": only, "started_at": started_at, "commit": machine["commit"]}
            results.setdefault("reruns", []).append(rerun)
        else:
            results["machine"] = machine
        load = Load(bench.ports["web"], CLIENTS)

        def machinery_of_this_run() -> dict:
            if "machinery" not in results:
                raise RuntimeError("the pickup needs section 2's drain rates, which broke off")
            return results["machinery"]

        runs = {
            "latency": lambda: sections.request_latency(bench, size, load),
            "machinery": lambda: sections.job_machinery(bench, size),
            "io": lambda: sections.io_bound(bench, size),
            "pickup": lambda: sections.pickup(bench, size, load, machinery_of_this_run()),
            "spike": lambda: sections.spike(bench, size, load),
            "footprint": lambda: sections.footprint(bench, load, orders=50),
            "ledger": lambda: ledger_growth.ledger_growth(bench, size),
            # Its own stack: separate hosts in network namespaces (bench.scale_out).
            "hosts": lambda: scale_out.hosts_section(size.name),
        }
        try:
            for name in only:
                print(f"… {name} ({datetime.now():%H:%M:%S})", file=sys.stderr, flush=True)
                try:
                    results[name] = runs[name]()
                except Exception:  # reported, and the other sections still run
                    results.setdefault("errors", {})[name] = traceback.format_exc()
                    print(results["errors"][name], file=sys.stderr, flush=True)
                    bench.stop_workers()
                    bench.purge()
        finally:
            load.close()
    # With --update, the time of the run that measured the other sections counts too.
    earlier = results.get("duration_s", 0) if args.update else 0
    results["duration_s"] = earlier + time.monotonic() - started
    results["targets"] = (
        sections.targets(results) + ledger_growth.targets(results) + scale_out.targets(results)
    )
    print(report.table(results))
    data, chart = report.write(results, args.output, size.name)
    print(f"\nwrote {data} and {chart} in {results['duration_s'] / 60:.1f} min")
    return 1 if _broken(results) else 0


def with_what_they_measure_against(only: list[str]) -> list[str]:
    """The sections to run, with section 2 before the pickup (added if it is not among them):
    the pickup's half load is half the drain rates section 2 measures, and they must be this
    machine's. (An --update of the pickup alone on a slower machine took an earlier run's
    rates: bare Celery's "half load" was more than it drained, a p50 of 268 ms.)"""
    if "pickup" not in only:
        return only
    if "machinery" not in only:
        print(
            "… the pickup's half load needs this run's drain rates: machinery runs first",
            file=sys.stderr,
        )
    rest = [name for name in only if name != "machinery"]
    at = rest.index("pickup")
    return [*rest[:at], "machinery", *rest[at:]]


def _broken(results: dict) -> bool:
    """What no benchmark may show, at any size: a lost job or a failed request; and at full
    size, a cost that grows with the ledger (bench.ledger_growth)."""
    from bench import ledger_growth

    spike = results.get("spike") or {}
    errors = spike.get("errors", 0) + sum(
        variant["errors"]
        for by_clients in (results.get("latency") or {}).values()
        for variants in by_clients.values()
        for variant in variants.values()
    )
    lost = spike.get("lost", 0)
    failed = sorted(results.get("errors", {}))
    empty = _measured_nothing(results)
    growing = ledger_growth.broken(results)
    if errors or lost or failed or empty or growing:
        print(
            f"FAILED: {lost} job(s) lost, {errors} request(s) answered with an error, "
            f"sections that broke off: {', '.join(failed) or 'none'}, "
            f"rates that measured nothing (NaN): {', '.join(empty) or 'none'}, "
            f"costs that grew with the ledger over {ledger_growth.MAX_RATIO}×: "
            f"{', '.join(growing) or 'none'}"
        )
    return bool(errors or lost or failed or empty or growing)


def _measured_nothing(results: dict) -> list[str]:
    """Drain rates that came out NaN: the backlog was never seen falling (for example, it was
    not on the broker yet when the workers started), so the figure is no measurement at all."""
    found = []

    def visit(value: object, path: str) -> None:
        if isinstance(value, dict):
            if "median" in value and isinstance(value["median"], float):
                if math.isnan(value["median"]) and ("rates" in path or "per_s" in path):
                    found.append(path)
                return
            for key, item in value.items():
                visit(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                visit(item, f"{path}[{index}]")

    for section in ("machinery", "io", "hosts"):
        visit(results.get(section), section)
    return found


if __name__ == "__main__":
    sys.exit(main())

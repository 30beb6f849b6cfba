"""9. Throughput by worker hosts: I/O-bound jobs per second from 1, 2 and 4 worker hosts.

The app runs as separate hosts in network namespaces (stack.hosts.Cluster): a PostgreSQL
host, a broker host, the sandbox third parties' host (answering in 200 ms), the web host,
the relay, beat, and four io hosts that run nothing until a step starts workers on them. The
cluster starts once; each step records a backlog of analytics jobs (hosts x JOBS_PER_HOST, so
that every step drains for about as long) from the web host, starts a thread-pool worker of
CONCURRENCY threads on each of its worker hosts, times the backlog's fall in the ledger from
outside, and stops the workers. Steps of 1, 2 and 4 hosts alternate in a shuffled order,
round by round.

Each step's rate is compared with its Little's-law limit, hosts x CONCURRENCY / 0.2 s (every
thread always waiting on a third party), and the scaling efficiency is rate(4) / (4 x rate(1)),
round by round. What caps the rate is measured in the same window: the CPU time used by the
worker hosts, the database, the broker and the sandbox (from /proc, every process in each
host's namespace), the machine's busy cores (other work included), and the jobs' own time
in the ledger (started to finished) against the 200 ms the third party takes.

Run on the web host (the app's own code records the jobs, in its transactions):
    python -m bench.scale_out fill JOBS PREFIX
"""

import contextlib
import math
import os
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.stats import Spread, machine_busy_seconds
from stack.procfs import cpu_ticks, stat_fields

HOST_COUNTS = (1, 2, 4)
# Threads per worker host. A job costs about 12 ms of CPU in all (worker 7, sandbox 3,
# PostgreSQL 2): 4 hosts at their limit (80 jobs/s) need one core of this machine's two. At 8
# threads they would need two, and the cores, not the hosts, would cap the rate.
CONCURRENCY = 4
LATENCY_MS = 200
JOBS_PER_HOST = {"tiny": 40, "full": 250}
ROUNDS = {"tiny": 1, "full": 3}
EFFICIENCY_GOAL = 0.8
JOB = "jobs.track_analytics_event"
# The sandbox's gunicorn: threads for twice the calls 4 hosts can have open, in two processes
# (each request holds its process's interpreter lock for a few ms): never the limit.
SANDBOX_WORKERS = 2
SANDBOX_THREADS = 48
TICK = os.sysconf("SC_CLK_TCK")


# --- the arithmetic -------------------------------------------------------------------------


def littles_law_limit(hosts: int, concurrency: int = CONCURRENCY) -> float:
    """Jobs per second if every thread of every host always waited on the third party."""
    return hosts * concurrency / (LATENCY_MS / 1000)


def efficiency(rate_one: float, rate_many: float, hosts: int) -> float:
    """rate(hosts) / (hosts x rate(1)): 1.0 is linear scaling."""
    return rate_many / (hosts * rate_one)


def steady_rate(samples: list[tuple[float, int]], total: int, since: float) -> dict:
    """Jobs per second while the backlog fell from 90 % to 10 % of `total`, counted from the
    first sample at or after `since` (every worker host ready): (time, jobs left) samples."""
    start = next((s for s in samples if s[0] >= since and s[1] <= total * 0.9), None)
    end = next((s for s in samples if s[1] <= total * 0.1), None)
    if start is None or end is None or end[0] <= start[0]:
        return {"per_s": float("nan"), "seconds": 0.0, "jobs": 0}
    jobs = start[1] - end[1]
    return {"per_s": jobs / (end[0] - start[0]), "seconds": end[0] - start[0], "jobs": jobs}


def summarise(steps: list[dict]) -> dict:
    """Per host count: rate, limit and rate ÷ limit over rounds; efficiency round by round."""
    by_hosts: dict[int, list[dict]] = {}
    for step in steps:
        by_hosts.setdefault(step["hosts"], []).append(step)
    rows = []
    for hosts in sorted(by_hosts):
        runs = by_hosts[hosts]
        limit = littles_law_limit(hosts, runs[0]["concurrency"])
        rows.append(
            {
                "hosts": hosts,
                "concurrency": runs[0]["concurrency"],
                "jobs": runs[0]["jobs"],
                "limit": limit,
                "per_s": Spread.of([r["per_s"] for r in runs]).as_dict(),
                "of_limit": Spread.of([r["per_s"] / limit for r in runs]).as_dict(),
                "job_ms": Spread.of([r["job_ms"] for r in runs]).as_dict(),
                "cpu": {
                    group: Spread.of([r["cpu_cores"][group] for r in runs]).as_dict()
                    for group in runs[0]["cpu_cores"]
                },
                "worker_cpu_ms_per_job": Spread.of(
                    [r["worker_cpu_ms_per_job"] for r in runs]
                ).as_dict(),
                "cpu_queue_ms_per_job": Spread.of(
                    [sum(r["cpu_queue_ms_per_job"].values()) for r in runs]
                ).as_dict(),
            }
        )
    result: dict[str, Any] = {"rows": rows}
    top = max(by_hosts)
    if 1 in by_hosts and top > 1:
        pairs = zip(by_hosts[1], by_hosts[top], strict=True)
        result["efficiency"] = {
            "hosts": top,
            **Spread.of([efficiency(a["per_s"], b["per_s"], top) for a, b in pairs]).as_dict(),
        }
    return result


def targets(results: dict) -> list[dict]:
    section = results.get("hosts")
    if not section or "efficiency" not in section:
        return []
    value = section["efficiency"]["median"]
    name = f"jobs/s of {section['efficiency']['hosts']} worker hosts ÷ (that × 1 host's)"
    met = not math.isnan(value) and value >= EFFICIENCY_GOAL
    return [{"target": name, "value": value, "goal": f"≥ {EFFICIENCY_GOAL}", "met": met}]


# --- the section ----------------------------------------------------------------------------


def hosts_section(size_name: str) -> dict:
    from stack.hosts import Cluster, skip_reason

    reason = skip_reason()
    if reason:
        print(f"hosts: skipped, {reason}", file=sys.stderr, flush=True)
        return {"skipped": reason}
    per_host = JOBS_PER_HOST[size_name]
    rounds = ROUNDS[size_name]
    overrides = {
        "DJANGO_DEBUG": "false",  # as in production: no query log
        "DJANGO_SECRET_KEY": "benchmark-only-" + "x" * 40,
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
    }
    latencies = {
        f"SANDBOX_{service.upper()}_LATENCY_MS": str(LATENCY_MS)
        for service in ("smtp", "crm", "analytics", "payments", "webhooks")
    }
    cluster = Cluster(
        io_workers=max(HOST_COUNTS),
        overrides=overrides,
        sandbox_env=latencies,
        sandbox_workers=SANDBOX_WORKERS,
        sandbox_threads=SANDBOX_THREADS,
        start_io_workers=False,
        without_s3=True,
    )
    started = time.monotonic()
    steps: list[dict] = []
    try:
        cluster.start()
        startup_s = time.monotonic() - started
        if rounds > 1:  # every table, cache and connection warm before the first step
            _fill(cluster, CONCURRENCY * 4, "warm-up")
            _step(cluster, 1, CONCURRENCY * 4, "warm-up")
        shuffle = random.Random(15)
        for round_ in range(rounds):
            order = list(HOST_COUNTS)
            shuffle.shuffle(order)
            for hosts in order:
                jobs = hosts * per_host
                prefix = f"hosts{hosts}-r{round_}"
                _fill(cluster, jobs, prefix)
                step = _step(cluster, hosts, jobs, prefix)
                step["round"] = round_
                steps.append(step)
                print(
                    f"   {hosts} host(s): {step['per_s']:.1f} jobs/s of "
                    f"{littles_law_limit(hosts):.0f}, worker CPU {step['cpu_cores']['workers']:.2f}"
                    f" cores, machine {step['cpu_cores']['machine']:.2f}",
                    file=sys.stderr,
                    flush=True,
                )
    except Exception:
        print(cluster.logs()[-6000:], file=sys.stderr, flush=True)
        raise
    finally:
        cluster.stop()
    return {
        "latency_ms": LATENCY_MS,
        "concurrency": CONCURRENCY,
        "jobs_per_host": per_host,
        "rounds": rounds,
        "sandbox": {"workers": SANDBOX_WORKERS, "threads": SANDBOX_THREADS},
        "startup_s": startup_s,
        "steps": steps,
        **summarise(steps),
    }


def _fill(cluster: Any, jobs: int, prefix: str) -> None:
    """Record `jobs` analytics jobs from the web host and wait until the broker holds them."""
    from stack.waiting import wait_until

    python = str(Path(sys.executable).parent / "python")
    cluster.run("web", python, "-m", "bench.scale_out", "fill", str(jobs), prefix)
    broker = _broker(cluster)
    wait_until(
        lambda: broker.llen("bulk") >= jobs, timeout=60, message=f"{jobs} jobs on the broker"
    )


def _broker(cluster: Any) -> Any:
    import redis

    from stack.hosts import BROKER_PORT

    return redis.Redis(host=cluster.ip("broker"), port=BROKER_PORT)


def _step(cluster: Any, hosts: int, jobs: int, prefix: str) -> dict:
    """Start workers on `hosts` io hosts on the filled queue, sample the jobs left in the
    ledger until none is, and stop them."""
    import psycopg

    from stack.waiting import wait_until

    names = [f"io{n}" for n in range(1, hosts + 1)]
    samples: list[tuple[float, int]] = []
    failure: list[BaseException] = []
    done = threading.Event()
    pattern = f"{prefix}:%"
    query = (
        "SELECT count(*) FROM jobs_job WHERE name = %s AND kwargs->>'event_id' LIKE %s "
        "AND state NOT IN ('succeeded', 'dead', 'cancelled', 'skipped', 'declined')"
    )
    started = time.monotonic()

    def sample() -> None:
        try:
            with psycopg.connect(cluster.database_url(), autocommit=True) as db:
                while True:
                    (left,) = db.execute(query, (JOB, pattern)).fetchone() or (0,)
                    samples.append((time.monotonic() - started, left))
                    if left == 0:
                        return
                    if time.monotonic() - started > 120 + jobs / 2:
                        raise TimeoutError(f"{left} jobs still left")
                    time.sleep(0.05)
        except BaseException as exc:  # reported below, in the caller's thread
            failure.append(exc)
        finally:
            done.set()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    # A host's worker log is appended to, step after step: ready is a new " ready." line.
    seen = {name: _readies(cluster, name) for name in names}
    for name in names:
        cluster.start_io_worker(name, concurrency=CONCURRENCY, wait=False)
    wait_until(
        lambda: all(_readies(cluster, name) > seen[name] for name in names),
        timeout=120,
        message=f"the workers on {', '.join(names)} to be ready",
    )
    ready = time.monotonic() - started
    cpu_before = _cpu(cluster, names)
    left_at_ready = samples[-1][1] if samples else jobs
    done.wait()
    cpu_after = _cpu(cluster, names)
    window = time.monotonic() - started - ready
    with ThreadPoolExecutor(len(names)) as pool:
        list(pool.map(cluster.stop_host, names))
    if failure:
        raise failure[0]
    measured = steady_rate(samples, jobs, ready)
    used = {group: cpu_after[group] - cpu_before[group] for group in cpu_after}
    cores = {group: used[group] / window for group in cpu_after if not group.endswith("_waited")}
    rows = cluster.sql(
        "SELECT avg(extract(epoch FROM finished_at - started_at)) * 1000 FROM jobs_job "
        "WHERE name = %s AND kwargs->>'event_id' LIKE %s",
        (JOB, pattern),
    )
    worker_jobs = max(1, left_at_ready)
    return {
        "hosts": hosts,
        "concurrency": CONCURRENCY,
        "jobs": jobs,
        "per_s": measured["per_s"],
        "window_s": measured["seconds"],
        "window_jobs": measured["jobs"],
        "ready_s": ready,
        "left_at_ready": left_at_ready,
        "job_ms": float(rows[0][0] or "nan"),
        "cpu_cores": cores,
        "worker_cpu_ms_per_job": used["workers"] * 1000 / worker_jobs,
        # Waiting for a core, per job: the worker's threads, the sandbox's that answer it and
        # PostgreSQL's backends; what a busy machine adds to each job's time.
        "cpu_queue_ms_per_job": {
            group: used[f"{group}_waited"] * 1000 / worker_jobs
            for group in ("workers", "sandbox", "db")
        },
    }


def _readies(cluster: Any, name: str) -> int:
    log = cluster.hosts[name].workdir / "logs" / "worker.log"
    return log.read_text(errors="replace").count(" ready.") if log.exists() else 0


CPU_GROUPS = {"db": ("db",), "broker": ("broker",), "sandbox": ("sandbox",)}


def _cpu(cluster: Any, workers: list[str]) -> dict[str, float]:
    """CPU seconds used so far by each group of hosts (every process in their namespaces,
    with their children that ended), and the machine's busy seconds (anything running)."""
    groups = {"workers": tuple(workers), **CPU_GROUPS}
    groups["rest"] = tuple(
        name for name in cluster.hosts if not any(name in g for g in groups.values())
    )
    used = {}
    for group, names in groups.items():
        counted = [_namespace_cpu(cluster, name) for name in names]
        used[group] = sum(cpu for cpu, _ in counted)
        used[f"{group}_waited"] = sum(waited for _, waited in counted)
    used["machine"] = machine_busy_seconds()
    return used


def _namespace_cpu(cluster: Any, name: str) -> tuple[float, float]:
    """CPU seconds used, and seconds its threads waited for a core while runnable."""
    pids = subprocess.run(
        ["ip", "netns", "pids", cluster.hosts[name].namespace], capture_output=True, text=True
    ).stdout.split()
    ticks = 0
    waited_ns = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            _, fields = stat_fields(Path(f"/proc/{pid}/stat").read_text())
            ticks += cpu_ticks(fields)
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    # Time on a run queue, waiting for a core (sched-stats.rst), in ns.
                    waited_ns += int((task / "schedstat").read_text().split()[1])
    return ticks / TICK, waited_ns / 1e9


# --- report ---------------------------------------------------------------------------------


def table(section: dict) -> list[str]:
    lines = ["", "9. Throughput by worker hosts (network namespaces), third parties at 200 ms"]
    if "skipped" in section:
        lines.append(f"     skipped: {section['skipped']}")
        return lines
    lines.append(
        f"     {section['concurrency']} threads per host, {section['jobs_per_host']} analytics "
        f"jobs per host per step, {section['rounds']} round(s); PostgreSQL 15, Valkey and "
        f"the sandbox on hosts of their own, sandbox gunicorn "
        f"{section['sandbox']['workers']} × {section['sandbox']['threads']} threads"
    )
    lines.append(
        f"     {'hosts':>5} {'jobs/s':>24} {'limit':>7} {'÷ limit':>20} {'job ms':>8} "
        f"{'CPU cores: workers':>19} {'db':>5} {'broker':>6} {'sandbox':>7} {'rest':>5} "
        f"{'machine':>7}  {'worker CPU/job':>14}  {'waiting for a core/job':>22}"
    )
    for row in section["rows"]:
        cpu = {group: value["median"] for group, value in row["cpu"].items()}
        lines.append(
            f"     {row['hosts']:>5} {_spread(row['per_s']):>24} {row['limit']:>7.0f} "
            f"{_spread(row['of_limit']):>20} {row['job_ms']['median']:>8.0f} "
            f"{cpu['workers']:>19.2f} {cpu['db']:>5.2f} {cpu['broker']:>6.2f} "
            f"{cpu['sandbox']:>7.2f} {cpu['rest']:>5.2f} {cpu['machine']:>7.2f}  "
            f"{row['worker_cpu_ms_per_job']['median']:>11.1f} ms"
            f"  {row['cpu_queue_ms_per_job']['median']:>19.1f} ms"
        )
    if "efficiency" in section:
        eff = section["efficiency"]
        lines.append(
            f"     scaling efficiency, rate({eff['hosts']}) ÷ ({eff['hosts']} × rate(1)): "
            f"{_spread(eff)}"
        )
    return lines


def _spread(spread: dict) -> str:
    if spread["rounds"] == 1:
        return f"{spread['median']:,.2f}"
    return f"{spread['median']:,.2f} ({spread['low']:,.2f}–{spread['high']:,.2f})"


def draw(axis: Any, section: dict) -> None:
    """Jobs/s by worker hosts against the Little's-law limit and against linear from 1 host."""
    rows = section["rows"]
    hosts = [row["hosts"] for row in rows]
    rates = [row["per_s"]["median"] for row in rows]
    low = [row["per_s"]["median"] - row["per_s"]["low"] for row in rows]
    high = [row["per_s"]["high"] - row["per_s"]["median"] for row in rows]
    axis.errorbar(hosts, rates, yerr=[low, high], marker="o", capsize=4, label="measured")
    axis.plot(hosts, [row["limit"] for row in rows], "--", label="Little's-law limit")
    one = rates[0]
    axis.plot(hosts, [one * h for h in hosts], ":", label="linear from 1 host")
    axis.plot(hosts, [EFFICIENCY_GOAL * one * h for h in hosts], ":", label="0.8 × linear")
    for h, rate in zip(hosts, rates, strict=True):
        axis.annotate(f"{rate:,.0f}/s", (h, rate), textcoords="offset points", xytext=(6, -12))
    axis.set_xticks(hosts)
    axis.set_xlabel("worker hosts")
    axis.set_ylabel("jobs/s")
    title = (
        f"Jobs/s by worker hosts ({section['concurrency']} threads each), third parties at 200 ms"
    )
    if "efficiency" in section:
        title += f"\nefficiency {section['efficiency']['median']:.2f}"
    axis.set_title(title)
    axis.legend(fontsize="small")


# --- run on the web host --------------------------------------------------------------------


def fill(jobs: int, prefix: str) -> None:
    """Record and publish `jobs` analytics jobs through the ledger, 500 per transaction."""
    import django

    django.setup()
    from django.db import transaction

    from bench.harness import analytics_kwargs
    from jobs.dispatch import enqueue_all, new_job, publisher

    for start in range(0, jobs, 500):
        with transaction.atomic():
            enqueue_all(
                [
                    new_job(JOB, **analytics_kwargs(f"{prefix}:{n}"))
                    for n in range(start, min(start + 500, jobs))
                ]
            )
    if not publisher.flush(timeout=120):
        raise SystemExit("the publisher did not send the recorded jobs in 120 s")


if __name__ == "__main__":
    if sys.argv[1:2] == ["fill"]:
        fill(int(sys.argv[2]), sys.argv[3])
    else:
        raise SystemExit(__doc__)

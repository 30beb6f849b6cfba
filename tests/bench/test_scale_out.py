"""The arithmetic of `make bench`'s hosts section (bench/scale_out.py), on given numbers: the
Little's-law limits, the steady-state rate once every worker host is ready, the scaling
efficiency round by round, and its target."""

import math

from bench.scale_out import (
    efficiency,
    littles_law_limit,
    steady_rate,
    summarise,
    table,
    targets,
)


def step(hosts: int, per_s: float, round_: int) -> dict:
    cores = {"workers": 0.1 * hosts, "db": 0.1, "broker": 0.01, "sandbox": 0.1, "rest": 0.0}
    return {
        "hosts": hosts,
        "concurrency": 4,
        "jobs": 250 * hosts,
        "per_s": per_s,
        "job_ms": 230.0,
        "cpu_cores": {**cores, "machine": 1.0},
        "worker_cpu_ms_per_job": 7.0,
        "cpu_queue_ms_per_job": {"workers": 5.0, "sandbox": 2.0, "db": 1.0},
        "round": round_,
    }


def test_the_limit_is_every_thread_of_every_host_waiting_200_ms():
    assert littles_law_limit(1, 4) == 20
    assert littles_law_limit(4, 4) == 80
    assert littles_law_limit(2, 8) == 80


def test_efficiency_is_the_rate_against_linear_from_one_host():
    assert efficiency(20, 80, 4) == 1.0
    assert efficiency(20, 64, 4) == 0.8
    assert efficiency(20, 20, 4) == 0.25


def test_the_steady_rate_starts_once_every_host_is_ready():
    # 100 jobs: one host alone drains 20 in the first second, then all of them 10 a second.
    samples = [(0.0, 100), (0.5, 90), (1.0, 80)]
    samples += [(1.0 + t, 80 - 10 * t) for t in range(1, 9)]
    measured = steady_rate(samples, 100, since=1.0)
    # From (1.0, 80) to the first sample at 10 % or less, (8.0, 10): 70 jobs in 7 s.
    assert measured == {"per_s": 10.0, "seconds": 7.0, "jobs": 70}
    # Counted from the start instead, the lone host's faster second would be in it.
    assert steady_rate(samples, 100, since=0.0)["per_s"] == 80 / 7.5


def test_a_backlog_never_seen_falling_is_no_rate():
    assert math.isnan(steady_rate([(0.0, 100), (1.0, 100)], 100, since=0.0)["per_s"])
    assert math.isnan(steady_rate([(0.0, 100), (1.0, 0)], 100, since=2.0)["per_s"])


def test_rates_limits_and_efficiency_per_round():
    steps = [
        step(1, 18.0, 0),
        step(4, 72.0, 0),
        step(2, 38.0, 0),
        step(4, 70.0, 1),
        step(1, 20.0, 1),
        step(2, 36.0, 1),
    ]
    section = summarise(steps)

    rows = {row["hosts"]: row for row in section["rows"]}
    assert [row["hosts"] for row in section["rows"]] == [1, 2, 4]
    assert rows[4]["limit"] == 80
    assert rows[4]["per_s"] == {"median": 71.0, "low": 70.0, "high": 72.0, "rounds": 2}
    assert rows[1]["of_limit"]["median"] == 19 / 20
    # Round by round: 72 / (4 x 18) = 1.0 and 70 / (4 x 20) = 0.875, not medians divided.
    assert section["efficiency"] == {
        "hosts": 4,
        "median": 0.9375,
        "low": 0.875,
        "high": 1.0,
        "rounds": 2,
    }


def test_the_target_is_0_8_of_linear():
    met = summarise([step(1, 20.0, 0), step(4, 64.0, 0)])
    missed = summarise([step(1, 20.0, 0), step(4, 60.0, 0)])
    nothing = summarise([step(1, 20.0, 0), step(4, float("nan"), 0)])

    assert [row["met"] for row in targets({"hosts": met})] == [True]
    assert [row["met"] for row in targets({"hosts": missed})] == [False]
    assert [row["met"] for row in targets({"hosts": nothing})] == [False]
    assert targets({"hosts": {"skipped": "network namespaces need root"}}) == []
    assert targets({}) == []


def test_the_table_says_why_the_section_was_skipped():
    assert "skipped: network namespaces need root" in "\n".join(
        table({"skipped": "network namespaces need root"})
    )
    section = {
        "concurrency": 4,
        "jobs_per_host": 250,
        "rounds": 1,
        "sandbox": {"workers": 2, "threads": 48},
        **summarise([step(1, 20.0, 0), step(4, 64.0, 0)]),
    }
    assert "0.80" in table(section)[-1]

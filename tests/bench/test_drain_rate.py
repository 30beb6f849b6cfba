"""The drain rate from (time, items left) samples: the steady state between 90 % and 10 % of
the backlog, with the crossings placed between the samples around them."""

import math

import pytest

from bench.stats import drain_rate


def test_a_drain_sampled_densely_is_its_rate_between_90_and_10_percent():
    # 100 a second after a slow start; the samples every 0.1 s.
    samples = [(0.0, 1000), (0.5, 1000)] + [(0.5 + t / 10, 1000 - 10 * t) for t in range(1, 101)]
    assert drain_rate(samples, 1000) == pytest.approx(100)


def test_a_drain_faster_than_the_sampling_is_the_rate_of_the_step_that_crossed_both():
    # 300 jobs gone in one interval (bare Celery's no-ops at the smallest size): no sample
    # falls between 90 % and 10 %, and the rate is the step's own, not "nothing measured".
    samples = [(0.0, 300), (0.1, 285), (0.2, 0)]
    assert drain_rate(samples, 300) == pytest.approx(285 / 0.1)


def test_a_backlog_never_seen_full_or_never_drained_measures_nothing():
    assert math.isnan(drain_rate([(0.0, 10), (0.1, 0)], 300))  # never seen above 90 %
    assert math.isnan(drain_rate([(0.0, 300), (0.1, 200)], 300))  # never down to 10 %
    assert math.isnan(drain_rate([], 300))

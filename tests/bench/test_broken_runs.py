"""What makes `make bench` fail at any size (CI runs it tiny): a drain rate that measured
nothing is a broken measurement, not a slow one."""

from bench.__main__ import _broken, _measured_nothing

NAN = float("nan")


def spread(median: float) -> dict:
    return {"median": median, "low": median, "high": median, "rounds": 1}


def test_a_drain_rate_that_came_out_nan_fails_the_run():
    results = {
        "machinery": {"rates": {"bare": spread(1000.0), "app_noop": spread(NAN)}},
        "io": {"io": [{"pool": "threads", "per_s": spread(NAN), "of_limit": spread(NAN)}]},
    }

    assert _measured_nothing(results) == ["machinery.rates.app_noop", "io.io[0].per_s"]
    assert _broken(results)


def test_measured_rates_and_a_nan_ratio_elsewhere_do_not():
    results = {
        "machinery": {
            "rates": {"bare": spread(1000.0), "app_noop": spread(450.0)},
            "app_noop_vs_bare": spread(0.45),
        },
        # A ratio with nothing to compare in a tiny run is no lost measurement.
        "pickup": {"ratio": spread(NAN)},
    }

    assert _measured_nothing(results) == []
    assert not _broken(results)

"""Which sections a run measures, for `--only`."""

from bench.__main__ import with_what_they_measure_against


def test_the_pickup_runs_after_the_drain_rates_it_takes_half_of():
    assert with_what_they_measure_against(["latency", "pickup", "spike"]) == [
        "latency",
        "machinery",
        "pickup",
        "spike",
    ]


def test_sections_that_need_nothing_else_run_as_asked():
    assert with_what_they_measure_against(["spike", "latency"]) == ["spike", "latency"]
    assert with_what_they_measure_against(["machinery", "pickup"]) == ["machinery", "pickup"]


def test_the_drain_rates_asked_for_after_the_pickup_are_measured_before_it():
    assert with_what_they_measure_against(["pickup", "spike", "machinery"]) == [
        "machinery",
        "pickup",
        "spike",
    ]

"""The thread that renews the leases of a process's runs (jobs.heartbeat): it must outlive any
failure of one renewal, since without it every lease of the process runs out while its jobs
still run, and other workers take them over."""

import threading

import pytest

from jobs import heartbeat
from stack.waiting import wait_until

HEARTBEAT = 0.05


@pytest.fixture
def renewals(settings, monkeypatch):
    """The renewer's beats, counted, at a fast heartbeat; no run held at the end."""
    settings.JOBS_HEARTBEAT_SECONDS = HEARTBEAT
    beats: list[str] = []
    failures = {"next": 0}

    def renew() -> int:
        beats.append("beat")
        if failures["next"]:
            failures["next"] -= 1
            raise RuntimeError("a renewal that fails in a way nobody planned for")
        return len(heartbeat.held())

    monkeypatch.setattr(heartbeat, "renew", renew)
    yield beats, failures
    for job_id in heartbeat.held():
        heartbeat.release(job_id)


def renewers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "lease-renewer" and t.is_alive()]


def test_the_renewer_outlives_a_renewal_that_fails_unexpectedly(renewals):
    beats, failures = renewals
    failures["next"] = 1
    heartbeat.hold("job-a", attempt=1, node="test")

    wait_until(lambda: len(beats) >= 3, timeout=5, message="renewals after the failed one")
    assert len(renewers()) == 1


def test_the_renewer_ends_with_the_last_run_and_the_next_run_starts_another(renewals):
    beats, _ = renewals
    heartbeat.hold("job-a", attempt=1, node="test")
    wait_until(lambda: len(beats) >= 1, timeout=5, message="the first renewal")

    heartbeat.release("job-a")
    wait_until(lambda: not renewers(), timeout=5, message="the renewer to end")
    renewed_before = len(beats)

    heartbeat.hold("job-b", attempt=1, node="test")
    wait_until(lambda: len(beats) > renewed_before, timeout=5, message="a renewal of the next run")
    assert len(renewers()) == 1

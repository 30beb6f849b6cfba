"""A worker's forks wait for its threads' database work, but not for ever (jobs.connections).

The fork itself is tried in tests/faults/test_database_outage.py (a pool process forked while the
heartbeat writes can write); here, the wait's limit: the forking thread is the worker's event
loop, which takes no message and enforces no time limit while it waits."""

import logging
import threading
import time

import pytest

from jobs import connections


def _fork_waits(monkeypatch: pytest.MonkeyPatch, seconds: float) -> float:
    monkeypatch.setattr(connections, "_fork_wait_seconds", lambda: seconds)
    return seconds


@pytest.fixture
def short_wait(monkeypatch: pytest.MonkeyPatch) -> float:
    return _fork_waits(monkeypatch, 0.3)


@pytest.fixture
def long_wait(monkeypatch: pytest.MonkeyPatch) -> float:
    """Far longer than the work below: the fork returns as soon as the work ends."""
    return _fork_waits(monkeypatch, 10)


def _hold_the_database_work(seconds: float) -> tuple[threading.Thread, threading.Event]:
    """A thread inside `no_fork_meanwhile` (a heartbeat's write, say) for `seconds`."""
    inside = threading.Event()

    def work() -> None:
        with connections.no_fork_meanwhile():
            inside.set()
            time.sleep(seconds)

    thread = threading.Thread(target=work)
    thread.start()
    assert inside.wait(5)
    return thread, inside


def test_a_fork_goes_ahead_after_its_wait_and_says_so(short_wait, caplog):
    holder, _ = _hold_the_database_work(seconds=3)
    try:
        caplog.set_level(logging.WARNING, logger="jobs.connections")
        started = time.monotonic()
        connections._before_fork()
        try:
            waited = time.monotonic() - started
        finally:
            connections._after_fork_in_parent()

        assert short_wait <= waited < 2  # not until the work's end, 3 s in
        assert any("forking after waiting" in record.getMessage() for record in caplog.records)
        # The lock is still the working thread's: the fork did not release it.
        assert connections._no_fork.locked()
    finally:
        holder.join()
    assert not connections._no_fork.locked()  # released by its holder, once


def test_a_fork_waits_for_work_that_ends_in_time_and_frees_the_lock_after(long_wait, caplog):
    holder, _ = _hold_the_database_work(seconds=0.1)
    caplog.set_level(logging.WARNING, logger="jobs.connections")
    started = time.monotonic()
    connections._before_fork()
    try:
        assert time.monotonic() - started < long_wait  # it went once the work had ended
        assert connections._no_fork.locked()  # the fork holds it now
        holder.join(timeout=5)
    finally:
        connections._after_fork_in_parent()

    assert not connections._no_fork.locked()
    assert not [record for record in caplog.records if "forking after" in record.getMessage()]
    with connections.no_fork_meanwhile():  # the next piece of work is not held up
        pass

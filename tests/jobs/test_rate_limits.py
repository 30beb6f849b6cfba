"""A third party's rate limit holds across every thread and process that calls it (the
count is kept on the real broker, as in production)."""

import threading
import time
import uuid

import pytest

from jobs.rate_limits import wait_for_turn


def test_calls_from_many_threads_stay_within_the_limit_and_all_get_through() -> None:
    service = f"test-{uuid.uuid4().hex}"  # a count of its own
    started: list[float] = []

    def caller() -> None:
        for _ in range(4):
            wait_for_turn(service, "5/second")
            started.append(time.monotonic())

    threads = [threading.Thread(target=caller) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(started) == 12  # nobody was turned away, only made to wait
    started.sort()
    # No stretch of (nearly) a second holds more than five calls.
    busiest = max(sum(1 for t in started if first <= t < first + 0.9) for first in started)
    assert busiest <= 5
    assert started[-1] - started[0] >= 1.5  # twelve calls at five a second take two windows


def test_a_window_store_that_does_not_answer_is_a_transient_error(settings) -> None:
    """The broker's Redis restarting or failing over to its replica: the CRM job is retried
    later (TransientError), not dead (any other exception)."""
    from jobs import rate_limits
    from jobs.errors import TransientError
    from stack.waiting import free_port

    settings.RATE_LIMITS_STORAGE_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing there
    settings.RATE_LIMITS_STORAGE_OPTIONS = {}
    rate_limits._limiter.cache_clear()
    try:
        with pytest.raises(TransientError, match="rate limit of crm"):
            wait_for_turn("crm", "5/second")
    finally:
        rate_limits._limiter.cache_clear()

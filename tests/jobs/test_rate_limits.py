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


def test_an_unreachable_count_is_a_transient_error_not_a_failure(monkeypatch) -> None:
    # A Redis nobody listens on, as a worker host cut off from the broker sees it: the job
    # that waits for its turn is retried later, instead of ending as a dead letter.
    from limits import storage, strategies

    from jobs import rate_limits
    from jobs.errors import TransientError
    from stack.waiting import free_port

    unreachable = strategies.MovingWindowRateLimiter(
        storage.storage_from_string(f"redis://127.0.0.1:{free_port()}/0")
    )
    monkeypatch.setattr(rate_limits, "_limiter", lambda: unreachable)
    with pytest.raises(TransientError, match="rate limit's count is unreachable"):
        wait_for_turn(f"test-{uuid.uuid4().hex}", "5/second")

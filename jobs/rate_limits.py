"""Third parties that allow only so many calls a second, counted across every worker.

Celery's own task `rate_limit` does not do this job here. It counts per worker process, not
per API key; on Redis it let one CRM job a second through for "10/s" (celery/celery#5927);
and a job it holds back keeps one of the worker's prefetch slots, so a backlog of them
stalls every other queue of that worker. Instead, a call waits for its turn in a moving
window kept in Redis (the `limits` library), which every worker process shares.
"""

import time
from functools import cache

from django.conf import settings
from limits import parse, storage, strategies
from limits.errors import StorageError

from jobs.errors import TransientError
from jobs.shutdown import checkpoint

# A thread never waits longer than this in one go; then it asks again.
LONGEST_NAP_SECONDS = 1.0


@cache
def _limiter() -> strategies.MovingWindowRateLimiter:
    return strategies.MovingWindowRateLimiter(
        storage.storage_from_string(
            settings.RATE_LIMITS_STORAGE_URL,
            # The store's own errors (redis-py's, say) as one StorageError, told apart below.
            wrap_exceptions=True,
            **settings.RATE_LIMITS_STORAGE_OPTIONS,
        )
    )


def wait_for_turn(service: str, limit: str) -> None:
    """Return once a call to `service` fits within `limit` ("10/second"), counting it."""
    item = parse(limit)
    try:
        limiter = _limiter()
        while not limiter.hit(item, service):
            checkpoint()  # a safe point: a stopping worker hands the job back while it waits
            window = limiter.get_window_stats(item, service)
            time.sleep(min(LONGEST_NAP_SECONDS, max(0.01, window.reset_time - time.time())))
    except StorageError as exc:
        # The broker's Redis restarting or failing over, or a pooled connection a partition
        # broke (a worker host cut off from the broker, healed: tests/hosts). No call was
        # made: a retry, not a dead letter.
        raise TransientError(f"the rate limit of {service} cannot be counted now: {exc}") from exc

"""What the broker holds, asked with short timeouts: the dashboard, the metrics, the health
check and the relay must answer within a second even while the broker is frozen (a frozen
Redis accepts connections and never answers them)."""

from typing import Any

import redis
from celery import current_app
from django.conf import settings
from kombu.exceptions import ChannelError, OperationalError

from jobs import sentinel

# Short, and far shorter than the publishing path's: a probe that gets no answer in this
# time says "down" and the page goes on.
PROBE_TIMEOUT_SECONDS = 0.3


def queue_depths() -> dict[str, int | None]:
    """Messages waiting in each queue (not those taken by a worker), as the broker counts
    them; None for every queue when the broker does not answer."""
    depths: dict[str, int | None] = dict.fromkeys(settings.QUEUES)
    probe = {
        "socket_timeout": PROBE_TIMEOUT_SECONDS,
        "socket_connect_timeout": PROBE_TIMEOUT_SECONDS,
    }
    options: dict[str, Any] = {**probe, "max_retries": 0}
    sentinel_options = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("sentinel_kwargs")
    if sentinel_options is not None:  # the sentinels are asked first, as briefly
        options["sentinel_kwargs"] = {**sentinel_options, **probe}
    connection = current_app.connection_for_read(
        connect_timeout=PROBE_TIMEOUT_SECONDS, transport_options=options
    )
    # What the transport raises when its server is away (redis-py's own errors, for Redis).
    unreachable: tuple[type[BaseException], ...] = (
        *connection.connection_errors,
        OperationalError,
        OSError,
    )
    try:
        with connection:
            # kombu's Channel: its stubs know only the abstract one.
            channel: Any = connection.default_channel
            for queue in settings.QUEUES:
                try:
                    depths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
                except ChannelError:
                    depths[queue] = 0  # Redis keeps no key for an empty queue
    except unreachable:
        return dict.fromkeys(settings.QUEUES)
    return depths


def load_transport() -> None:
    """Import the broker's transport now (for Redis, kombu's and redis-py's modules: half a
    second and more), so that the first probe a process makes costs no more than the others."""
    current_app.connection_for_read().transport  # noqa: B018 (the property imports it)


def answers() -> bool:
    """Does the broker answer a question now (within PROBE_TIMEOUT_SECONDS or so)?"""
    return any(depth is not None for depth in queue_depths().values())


def redis_client(**options: Any) -> redis.Redis:
    """A plain redis-py client of the broker's Redis (its primary, behind Sentinel): for looking
    at queues as kombu left them (the tests, the fault stack). `options` are redis-py's."""
    url = settings.CELERY_BROKER_URL
    if sentinel.is_sentinel_url(url):
        return sentinel.master_client(
            url,
            master_name=settings.BROKER_SENTINEL_MASTER,
            sentinel_password=settings.BROKER_SENTINEL_PASSWORD,
            **options,
        )
    return redis.Redis.from_url(url, **options)

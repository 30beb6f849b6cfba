"""The broker's transport (jobs.redis_transport): kombu's Redis transport, with one redis-py
client per channel for the channel's commands instead of one per command, on the real broker."""

import threading
import uuid
from collections.abc import Iterator
from unittest import mock

import pytest
import redis
from celery import Celery
from django.conf import settings
from kombu import Connection, Exchange, Queue
from kombu.transport import redis as kombu_redis

from config.celery import app as celery_app
from jobs import redis_transport

pytestmark = pytest.mark.skipif(
    not settings.CELERY_BROKER_URL.startswith("redis"), reason="a redis:// broker"
)


@pytest.fixture
def queue(broker: redis.Redis) -> Iterator[Queue]:
    """A queue of the test's own on the test broker, and the unacked messages it leaves."""
    name = f"transport-test-{uuid.uuid4().hex[:8]}"
    yield Queue(name, Exchange(name, type="direct"), routing_key=name)
    broker.delete(name)


@pytest.fixture
def connection() -> Iterator[Connection]:
    with celery_app.connection_for_write() as connection:
        yield connection


def _unacked(broker: redis.Redis, delivery_tags: list[str]) -> list[str]:
    """Which of these messages the broker still holds as taken and not acknowledged."""
    held = broker.hmget("unacked", delivery_tags)
    return [tag for tag, message in zip(delivery_tags, held, strict=True) if message is not None]


def _publish_and_take(connection, queue: Queue, count: int) -> list:
    """Publish `count` messages to the queue through the connection's channel, then take them
    as a worker does (unacknowledged: each held in the broker's unacked hash until its ack)."""
    channel = connection.default_channel
    producer = connection.Producer(channel)
    for n in range(count):
        producer.publish(
            {"n": n}, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue]
        )
    bound = queue(channel)
    return [bound.get(no_ack=False) for _ in range(count)]


def _count_clients_made() -> mock._patch:
    return mock.patch.object(
        kombu_redis.Channel,
        "_create_client",
        autospec=True,
        side_effect=kombu_redis.Channel._create_client,  # type: ignore[attr-defined]  # not in the stubs
    )


def test_the_apps_broker_connection_uses_the_transport_that_keeps_one_client(connection):
    assert isinstance(connection.default_channel, redis_transport.Channel)


def test_the_apps_pooled_connections_use_it_too():
    """What publishes jobs (apply_async, the publisher thread, the relay, control commands)
    takes a connection from the app's pool, which kombu builds with a class of its own, and
    keeps for the whole process: here another Celery app on the same broker makes its pool
    first, as the benchmark's common way does."""
    another = Celery("another", broker=celery_app.conf.broker_url, set_as_current=False)
    another.conf.broker_transport_options = celery_app.conf.broker_transport_options
    with another.producer_or_acquire() as producer:
        assert not isinstance(producer.channel, redis_transport.Channel)  # kombu's own
    with celery_app.producer_or_acquire() as producer:
        assert isinstance(producer.channel, redis_transport.Channel)
    with celery_app.pool.acquire(block=True) as pooled:
        assert isinstance(pooled.default_channel, redis_transport.Channel)
        assert pooled.as_uri().startswith("redis://")


def test_a_channel_publishes_takes_and_acks_with_one_redis_client(connection, queue, broker):
    with _count_clients_made() as made:
        taken = _publish_and_take(connection, queue, 20)
        tags = [message.delivery_tag for message in taken]
        assert _unacked(broker, tags) == tags  # each one held by the broker until its ack
        for message in taken:
            message.ack()

    assert [message.payload["n"] for message in taken] == list(range(20))
    assert _unacked(broker, tags) == []
    assert broker.llen(queue.name) == 0
    # kombu's own channel makes one for every publish, every take and every ack (102 here).
    sync_clients = [call for call in made.call_args_list if not call.kwargs.get("asynchronous")]
    assert len(sync_clients) == 1


def test_messages_taken_in_one_thread_are_acked_from_many_at_once(connection, queue, broker):
    """As a thread-pool worker does: its event loop takes the messages, its pool's threads ack
    them (CELERY_TASK_ACKS_LATE) through the one channel and its one client. A guard that
    every ack lands when they share it (kombu's per-command clients pass it too)."""
    taken = _publish_and_take(connection, queue, 200)
    tags = [message.delivery_tag for message in taken]
    assert len(_unacked(broker, tags)) == 200
    failures: list[BaseException] = []
    start = threading.Barrier(8)

    def ack(messages) -> None:
        start.wait()
        try:
            for message in messages:
                message.ack()
        except BaseException as exc:  # reported below, with the other threads' failures
            failures.append(exc)

    threads = [threading.Thread(target=ack, args=(taken[n::8],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not [thread for thread in threads if thread.is_alive()]
    assert failures == []
    assert _unacked(broker, tags) == []
    assert [tag for tag in tags if broker.zscore("unacked_index", tag) is not None] == []


def test_a_channel_whose_pool_was_replaced_makes_a_client_on_the_new_pool(
    connection, queue, broker
):
    channel = connection.default_channel
    producer = connection.Producer(channel)
    producer.publish(
        {"n": 1}, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue]
    )
    old_pool = channel.pool
    channel._disconnect_pools()  # as kombu does when it closes or resets the channel's pools

    producer.publish({"n": 2}, exchange=queue.exchange, routing_key=queue.routing_key)

    assert channel.pool is not old_pool
    with channel.conn_or_acquire() as client:
        assert client.connection_pool is channel.pool
    assert broker.llen(queue.name) == 2


def test_each_broker_url_gets_its_transport_and_keeps_its_scheme():
    from kombu.transport.pyamqp import Transport as KombuAmqpTransport

    for url, transport in [
        ("redis://127.0.0.1:6379/0", redis_transport.Transport),
        ("rediss://broker.example:6380/0", redis_transport.Transport),
        ("sentinel://127.0.0.1:26379", redis_transport.SentinelTransport),
        ("amqp://guest:guest@127.0.0.1:5672//", KombuAmqpTransport),  # not Redis: kombu's own
    ]:
        connection = celery_app.connection_for_write(url)
        assert connection.get_transport_cls() is transport, url
        # What reads the transport's name sees the URL's scheme, as with kombu's transport.
        assert connection.as_uri().split("://")[0] == url.split("://")[0]
    # kombu's default for a rediss:// URL without SSL options still applies: SSL on (with
    # kombu's default of no certificate check, as before).
    assert celery_app.connection_for_write("rediss://broker.example:6380/0").ssl


def test_a_failover_to_the_next_url_keeps_the_transport():
    """kombu re-reads the next URL's scheme when it switches to it after a connection error
    (nothing connects here)."""
    connection = celery_app.connection_for_write("redis://127.0.0.2:6379/0;redis://127.0.0.3/0")
    connection.maybe_switch_next()
    assert connection.hostname == "127.0.0.3"
    assert connection.get_transport_cls() is redis_transport.Transport


def test_flower_reads_the_apps_broker_url():
    """Flower's broker page and queue lengths pick their client by the scheme of the app's
    broker URL (`conn.as_uri()`)."""
    from flower.utils.broker import Broker
    from flower.utils.broker import Redis as FlowerRedis

    with celery_app.connection_for_write() as connection:
        broker = Broker(connection.as_uri(include_password=True), http_api=None)
    assert isinstance(broker, FlowerRedis)

"""kombu's Redis transports, with one redis-py client per channel for the channel's own commands.

kombu's Redis channel builds a new `redis.Redis` object for each command it sends outside the
event loop (`Channel.conn_or_acquire` with no client: every publish, and every message's
bookkeeping, its entry in the unacked hash when it is taken and its removal at the ack). The
object shares the channel's connection pool, so no connection is opened; but redis-py copies
its table of some 170 reply parsers into every new client, about 60 µs on this project's
machine, twice or more per job. A worker draining no-op jobs spent about a sixth of its
interpreter time there (py-spy, docs/performance.md).

A redis-py client is safe to share between threads: it takes a connection from its pool for
each command and gives it back. So each channel keeps one, made the first time it is needed,
and makes a new one if the channel's pool is replaced. Everything else is kombu's.

The app's Celery takes them through its connections (`AMQP`, given to `Celery(amqp=...)` in
config/celery.py), pooled ones included (every publish and control command): a connection to
a `redis://`, `rediss://` or `sentinel://` URL uses these classes and keeps the URL's scheme
as its transport's name, so what reads that name sees what it would with kombu's own
(`as_uri()`: the worker's banner, Flower's broker page; `rediss://`'s SSL default; a
failover switch to the next URL). Any other URL, and any other Celery app in the process
(the benchmark's bare Celery and common way), get kombu's own, and pools of their own.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery.app.amqp import AMQP as CeleryAMQP
from kombu import Connection as KombuConnection
from kombu import connection as kombu_connection
from kombu.transport import redis as kombu_redis
from kombu.utils.collections import HashedSeq


class _OneClient:
    """Mixed into kombu's channels, before them."""

    _own_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        own = self._own_client
        pool = self.pool  # type: ignore[attr-defined]  # kombu's Channel
        if own is None or own.connection_pool is not pool:
            # Two threads may both get here first: each makes one, and one of them is kept.
            own = self._own_client = self._create_client()  # type: ignore[attr-defined]
        yield own


class Channel(_OneClient, kombu_redis.Channel):
    pass


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelChannel(_OneClient, kombu_redis.SentinelChannel):
    pass


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


TRANSPORTS: dict[str, type] = {
    "redis": Transport,
    "rediss": Transport,
    "sentinel": SentinelTransport,
}


class Connection(KombuConnection):
    """kombu's connection, with this module's transports for the schemes in TRANSPORTS."""

    def get_transport_cls(self) -> Any:
        name = self.transport_cls
        if isinstance(name, str) and name in TRANSPORTS:
            return TRANSPORTS[name]
        return super().get_transport_cls()

    def __eqhash__(self) -> Any:
        # kombu keeps its connection and producer pools process-wide, keyed by this: without
        # a key of its own, the app would take the pool another Celery app in the process had
        # made for the same URL (the benchmark's and the tests' common way), with kombu's
        # transport in it.
        return HashedSeq(__name__, super().__eqhash__())

    def Pool(self, limit: int | None = None, **kwargs: Any) -> "ConnectionPool":
        # kombu's pool makes its connections with a class of its own (PooledConnection);
        # Celery's `app.pool`, and so every publish and control command, takes them.
        return ConnectionPool(self, limit, **kwargs)


# kombu's stubs give the two bases' __enter__ different types; at run time
# PooledConnection's comes first, as in kombu.
class PooledConnection(kombu_connection.PooledConnection, Connection):  # type: ignore[misc]
    pass


class ConnectionPool(kombu_connection.ConnectionPool):
    def new(self) -> PooledConnection:
        return PooledConnection(self, **dict(self.connection._info(resolve=False)))


class AMQP(CeleryAMQP):
    """Celery's broker plumbing, making its connections with `Connection` above."""

    Connection = Connection
    BrokerConnection = Connection

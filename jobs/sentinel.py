"""A broker behind Redis Sentinel: the clients that talk to its Redis directly find the primary
through the sentinels, as kombu's `sentinel://` transport does for Celery.

The URL is kombu's: one `sentinel://[user:password@]host:port[/db]` per sentinel, joined by
`;`. The password and database of the first one are the primary's (kombu's reading); the
sentinels' own password, if they have one, is given apart (BROKER_SENTINEL_PASSWORD), since a
sentinel without one refuses an AUTH. Celery gets the primary's name as the transport option
`master_name` (config/settings.py); the other clients get it from here:

- `master_client`: a redis-py client of the primary (the tests' and the stack's look at the
  queues);
- `limits_url`: the URL the `limits` library (jobs.rate_limits) takes for the same primary;
- `SentinelPool`: the connection pool Django's RedisCache takes (`pool_class`), for the
  throttles' counts.

Each asks the sentinels which server is the primary whenever it opens a connection, so after a
failover the next connection goes to the promoted replica (redis-py's Sentinel clients).
"""

from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote, unquote, urlsplit

import redis
from redis.sentinel import Sentinel, SentinelConnectionPool

DEFAULT_PORT = 26379


def is_sentinel_url(url: str) -> bool:
    return url.startswith("sentinel://")


@dataclass(frozen=True)
class SentinelURL:
    sentinels: list[tuple[str, int]]
    username: str | None
    password: str | None
    db: int


def parse(url: str) -> SentinelURL:
    """The sentinels of a kombu sentinel URL, and the primary's credentials and database."""
    parts = [urlsplit(part) for part in url.split(";") if part.strip()]
    if not parts or any(part.scheme != "sentinel" for part in parts):
        raise ValueError(f"not sentinel://host:port;sentinel://host:port...: {url!r}")
    first = parts[0]
    path = first.path.strip("/")
    return SentinelURL(
        sentinels=[(part.hostname or "localhost", part.port or DEFAULT_PORT) for part in parts],
        username=unquote(first.username) if first.username else None,
        password=unquote(first.password) if first.password else None,
        db=int(path) if path else 0,
    )


def sentinel_kwargs(*, password: str | None, **socket_options: Any) -> dict[str, Any]:
    """How to talk to the sentinels themselves: their password (None: no AUTH, even when the
    primary has a password) and the same socket timeouts as the primary's connections."""
    return {"password": password or None, **socket_options}


def master_client(
    url: str, *, master_name: str, sentinel_password: str | None = None, **options: Any
) -> redis.Redis:
    """A client of the current primary; `options` are redis-py connection options
    (socket_timeout...)."""
    parsed = parse(url)
    sockets = {key: value for key, value in options.items() if key.startswith("socket_")}
    sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        parsed.sentinels,
        sentinel_kwargs=sentinel_kwargs(password=sentinel_password, **sockets),
        **options,
    )
    client = sentinel.master_for(  # type: ignore[no-untyped-call]
        master_name, db=parsed.db, username=parsed.username, password=parsed.password
    )
    return cast(redis.Redis, client)


def limits_url(url: str, *, master_name: str) -> str:
    """The `limits` library's URL for the same primary:
    redis+sentinel://[user:password@]host:port,host:port/master_name. Its password is the
    primary's; the sentinels' goes in the storage's `sentinel_kwargs` (settings)."""
    parsed = parse(url)
    credentials = ""
    if parsed.password:
        credentials = f"{quote(parsed.username or '', safe='')}:{quote(parsed.password, safe='')}@"
    hosts = ",".join(f"{host}:{port}" for host, port in parsed.sentinels)
    return f"redis+sentinel://{credentials}{hosts}/{master_name}"


class SentinelPool:
    """Django's RedisCache asks its `pool_class` for `from_url(location, **OPTIONS)`: this one
    answers with redis-py's pool of the current primary. The settings give the cache's
    LOCATION as a list of one URL, so that Django does not split it at the `;`."""

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        master_name: str,
        sentinel_password: str | None = None,
        **options: Any,
    ) -> SentinelConnectionPool:
        client = master_client(
            url, master_name=master_name, sentinel_password=sentinel_password, **options
        )
        return cast(SentinelConnectionPool, client.connection_pool)

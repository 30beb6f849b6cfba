"""The stack the benchmarks run against, and what they do to it between measurements.

Everything runs on loopback, from the repository alone: an embedded Valkey broker with the
append-only file of production (or BENCH_BROKER_URL), a SQLite database in a scratch folder
(or BENCH_DATABASE_URL, which is emptied first), the API under gunicorn, the sandbox third
parties under a gunicorn of their own with a SQLite file of their own, the sandbox SMTP
server, the outbox relay, and whichever workers a measurement asks for. Django runs with
DEBUG off, as in production.
"""

import os
import platform
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from django.conf import settings

from bench.stats import postgres_cpu_seconds
from stack.waiting import free_port

ROOT = Path(__file__).resolve().parent.parent
CORES = os.cpu_count() or 1

# The app's worker layout (settings.JOBS_WORKER_QUEUES, as in the Procfile): I/O-bound queues
# on a thread pool, the rate-limited CRM jobs on their own, the CPU-bound media queue on a
# process pool of one process per core.
IO_CONCURRENCY = 16
# Enough threads to keep the CRM's 10 calls a second going at its 500 ms (Little's law: 5).
CRM_CONCURRENCY = 8
MEDIA_CONCURRENCY = CORES

# Third parties as slow as real ones (section 1's synchronous variant, the spike).
REALISTIC_MS = {"smtp": 300, "crm": 500, "analytics": 150, "payments": 400, "webhooks": 200}
SERVICES = tuple(REALISTIC_MS)
SKU = "BENCH-1"
PASSWORD = "bench-password-1"
CLIENTS = 8
# What a worker started idle consumes until it is told its queues: nothing is ever sent there.
IDLE_QUEUE = "bench-idle"


@dataclass
class Customer:
    id: int
    token: str


@dataclass
class Bench:
    """The running stack: its processes, and handles on its broker and database."""

    workdir: Path
    env: dict[str, str]
    ports: dict[str, int]
    stack: Any = None  # a stack.processes.Stack, once running
    customers: list[Customer] = field(default_factory=list)
    workers: list = field(default_factory=list)
    idle_queues: dict[str, str] = field(default_factory=dict)  # started idle: name -> queues

    # --- set-up ---------------------------------------------------------------------------

    @classmethod
    @contextmanager
    def running(cls, workdir: Path | None = None) -> Iterator["Bench"]:
        if settings.configured:
            # Read already, they would not hold the environment set below: the bench would
            # run on the wrong databases and fail far from the cause ("The connection
            # 'sandbox' doesn't exist"). Helpers the bench imports first must not read them.
            raise RuntimeError(
                "Django's settings were read before the bench set its environment: a module "
                "imported before Bench.running reads them on import (stack.procfs is the "
                "place for helpers without Django)."
            )
        workdir = workdir or Path(tempfile.mkdtemp(prefix="shop-jobs-bench-"))
        ports = {name: free_port() for name in ("web", "sandbox", "smtp", "broker")}
        env = _environment(workdir, ports)
        os.environ.update(env)  # this process reads the same database and broker

        import django

        django.setup()
        from stack.processes import Stack

        bench = cls(workdir=workdir, env=env, ports=ports)
        bench.stack = Stack(
            workdir,
            overrides=env,
            clocks={},
            web_port=ports["web"],
            smtp_port=ports["smtp"],
            broker_port=ports["broker"],
        )
        try:
            bench._prepare_database()
            if not os.environ.get("BENCH_BROKER_URL"):
                bench.stack.start_broker()
            bench.purge()
            bench.stack.start_mail()
            bench.stack.start_web("sandbox", port=ports["sandbox"], workers=2, threads=48)
            bench.stack.start_web("web", port=ports["web"], workers=2, threads=8)
            bench.stack.start_relay()
            yield bench
        finally:
            bench.stack.stop()

    def _prepare_database(self) -> None:
        from django.contrib.auth.hashers import make_password
        from django.core.management import call_command
        from django.db import connection

        from sandbox.models import WebhookInbox
        from shop.models import Product
        from shop.services import create_customer
        from webhooks.models import WebhookEndpoint, new_secret

        if connection.vendor != "sqlite":
            call_command("flush", interactive=False, verbosity=0)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("migrate", database="sandbox", interactive=False, verbosity=0)
        Product.objects.create(sku=SKU, name="Benchmark mug", price="10.00", stock=10**9)
        inbox = WebhookInbox.objects.create(name="bench", secret=new_secret())
        WebhookEndpoint.objects.create(
            url=f"{self.env['SANDBOX_BASE_URL']}/webhooks/bench", secret=inbox.secret
        )
        password_hash = make_password(PASSWORD)
        for n in range(CLIENTS):
            customer, token = create_customer(
                email=f"client{n}@bench.example", name=f"Client {n}", password_hash=password_hash
            )
            self.customers.append(Customer(customer.pk, token))

    # --- the third parties -----------------------------------------------------------------

    def set_latencies(self, latencies_ms: dict[str, int]) -> None:
        from sandbox.switches import set_switch

        for service in SERVICES:
            set_switch(service, latency_ms=latencies_ms.get(service, 0), failure_rate=0)

    # --- workers ---------------------------------------------------------------------------

    def start_worker(self, name: str, *, idle: bool = False, **options) -> None:
        """Start a worker; with `idle`, consuming nothing until consume() tells it its queues."""
        options.setdefault("loglevel", "WARNING")
        if idle:
            self.idle_queues[name] = options["queues"]
            options["queues"] = IDLE_QUEUE
        self.workers.append(self.stack.start_worker(name, **options))

    def consume(self) -> None:
        """Idle workers take up their queues now (Celery's add_consumer, with replies)."""
        control = self.stack.control()
        for name, queues in self.idle_queues.items():
            hostname = f"{name}@{socket.gethostname()}"
            for queue in queues.split(","):
                replies = control.add_consumer(
                    queue, destination=[hostname], reply=True, timeout=10
                )
                if not replies:
                    raise RuntimeError(f"worker {hostname} did not take up queue {queue}")
        self.idle_queues = {}

    def workers_cpu_seconds(self) -> float:
        """User and system CPU time of the running workers' processes and their children."""
        return sum(worker.cpu_seconds() for worker in self.workers)

    def database_server_cpu_seconds(self) -> float | None:
        """CPU time of the PostgreSQL server, when the database is PostgreSQL on this machine
        (its work per job shares the workers' cores); None otherwise (SQLite's work is the
        workers' own, in their processes)."""
        from django.db import connection

        loopback = settings.DATABASES["default"].get("HOST") in ("127.0.0.1", "localhost", "::1")
        if connection.vendor != "postgresql" or not loopback:
            return None
        return postgres_cpu_seconds()

    def start_io_workers(self, count: int = 1, *, idle: bool = False) -> None:
        for n in range(count):
            self.start_worker(
                f"io{n}",
                idle=idle,
                pool="threads",
                concurrency=IO_CONCURRENCY,
                queues=",".join(settings.JOBS_WORKER_QUEUES["io"]),
                include="bench.ledger_tasks",  # section 2's no-op ledger job
            )

    def start_deployed_workers(self, io_processes: int = 1) -> None:
        """The app's whole layout: I/O workers, the CRM worker and the media worker."""
        self.start_io_workers(io_processes)
        self.start_worker("crm", pool="threads", concurrency=CRM_CONCURRENCY, queues="crm")
        self.start_worker("media", pool="prefork", concurrency=MEDIA_CONCURRENCY, queues="media")

    def start_bare_workers(self, count: int, *, idle: bool = False) -> None:
        from bench import bare

        for n in range(count):
            self.start_worker(
                f"bare{n}",
                idle=idle,
                app="bench.bare",
                pool="threads",
                concurrency=IO_CONCURRENCY,
                queues=bare.QUEUE,
                # Bare: without Django, whose fixup would otherwise set it up in the worker.
                env={"DJANGO_SETTINGS_MODULE": None},
            )

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers = []
        self.idle_queues = {}

    def workers_rss(self) -> int:
        return sum(worker.rss_bytes() for worker in self.workers)

    # --- the broker and the ledger ----------------------------------------------------------

    def broker(self):
        import redis

        return redis.Redis.from_url(self.env["CELERY_BROKER_URL"])

    def broker_depth(self, queues: tuple[str, ...] | None = None) -> int:
        """Messages waiting in the queues, plus those taken and not yet acknowledged."""
        from django.conf import settings

        queues = queues or (*settings.QUEUES, "celery", "bare")
        client = self.broker()
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(queue)
        pipe.hlen("unacked")
        return sum(pipe.execute())

    def ledger_backlog(self) -> int:
        """Jobs not finished yet (scheduled ones excepted: they are not due)."""
        from jobs.models import Job, state_is

        # Through the live jobs' index (jobs.models.state_is): this is read every 0.1 s.
        live = state_is(Job.State.QUEUED, Job.State.RUNNING, Job.State.RETRYING)
        return Job.objects.filter(live).count()

    def watch(
        self, remaining: Callable[[], int], *, timeout: float, every: float = 0.1
    ) -> list[tuple[float, int]]:
        """Sample remaining() until it is 0; (seconds since start, remaining) pairs."""
        start = time.monotonic()
        samples = []
        while True:
            left = remaining()
            samples.append((time.monotonic() - start, left))
            if left == 0:
                return samples
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"{left} still left after {timeout:.0f}s")
            time.sleep(every)

    def drain(
        self, start_workers: Callable[[], None], remaining: Callable[[], int], *, timeout: float
    ) -> list[tuple[float, int]]:
        """Start workers on a filled queue and sample remaining() until it is 0, from before
        the first worker starts (a worker drains while the next one is still starting)."""
        samples: list[tuple[float, int]] = []
        failure: list[BaseException] = []

        def sample() -> None:
            try:
                samples.extend(self.watch(remaining, timeout=timeout, every=0.05))
            except BaseException as exc:  # reported below, in the caller's thread
                failure.append(exc)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        start_workers()
        sampler.join()
        if failure:
            raise failure[0]
        return samples

    def purge(self) -> None:
        """Empty the queues and the job tables: each measurement starts from nothing queued."""
        from django.apps import apps
        from django.db import connections, router

        client = self.broker()
        for key in client.scan_iter(count=1000):
            if not key.startswith((b"_kombu", b"bench:")):
                client.delete(key)
        tables = [
            "jobs.OperatorAction",
            "jobs.PausedQueue",
            "jobs.DeadLetter",
            "jobs.Effect",
            "jobs.Job",
            "webhooks.WebhookAttempt",
            "webhooks.WebhookDelivery",
            "django_celery_results.TaskResult",
            "sandbox.ReceivedRequest",
            "sandbox.AnalyticsEvent",
            "sandbox.CrmRecord",
            "sandbox.ReceivedWebhook",
            "sandbox.Charge",
        ]
        for label in tables:
            model = apps.get_model(label)
            connection = connections[router.db_for_write(model)]
            with connection.cursor() as cursor:
                table = connection.ops.quote_name(model._meta.db_table)
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608
        shutil.rmtree(self.workdir / "mailbox", ignore_errors=True)

    # --- filling queues --------------------------------------------------------------------

    def record_analytics_jobs(self, count: int, *, prefix: str, task=None) -> None:
        """Record and publish `count` analytics jobs through the ledger, 500 per transaction;
        or as many jobs of another ledger task, with the same arguments."""
        from django.db import transaction

        from jobs.dispatch import enqueue_all, new_job

        name = task.name if task else "jobs.track_analytics_event"
        for start in range(0, count, 500):
            with transaction.atomic():
                enqueue_all(
                    [
                        new_job(name, **analytics_kwargs(f"{prefix}:{n}"))
                        for n in range(start, min(start + 500, count))
                    ]
                )
        self.wait_until_published()

    def wait_until_published(self) -> None:
        """Wait for the publisher thread to have sent what was recorded. A backlog measured by
        its drain must be on the broker before the workers start: the publisher sends after
        commit, off the caller's thread, and a drain sampled from an empty broker measured
        nothing (NaN jobs/s)."""
        from jobs.dispatch import publisher

        if not publisher.flush(timeout=120):
            raise TimeoutError("the publisher thread did not send the recorded jobs in 120 s")

    def publish_plain(self, task, count: int, *, prefix: str) -> None:
        """Publish `count` messages of a plain Celery task with the analytics job's arguments."""
        with task.app.producer_or_acquire() as producer, producer.batch():
            for n in range(count):
                task.apply_async(kwargs=analytics_kwargs(f"{prefix}:{n}"), producer=producer)

    def sample_message(self, queue: str) -> bytes:
        return self.broker().lindex(queue, 0) or b""

    # --- the machine -----------------------------------------------------------------------

    def machine(self) -> dict[str, Any]:
        from importlib.metadata import version

        import django
        from django.db import connection

        info = self.broker().info("server")
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                database = f"SQLite {sqlite3.sqlite_version} (WAL)"
            else:
                cursor.execute("SHOW server_version")
                database = f"PostgreSQL {cursor.fetchone()[0]}"
        broker = f"{'Valkey' if 'valkey_version' in info else 'Redis'} " + str(
            info.get("valkey_version") or info.get("redis_version")
        )
        return {
            "cores": CORES,
            "cpu": _cpu_model(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
            "python": platform.python_version(),
            "django": django.get_version(),
            "celery": version("celery"),
            "kombu": version("kombu"),
            "broker": broker,
            "database": database,
            "sandbox_database": "SQLite, a file of its own",
            "host": socket.gethostname(),
            "commit": _commit(),
        }


def analytics_kwargs(event_id: str) -> dict:
    return {"event_id": event_id, "name": "order_placed", "properties": {"order_id": 1}}


def avatar_file(name: str):
    """A 1024x768 JPEG photo-like image, as a signup might upload."""
    from django.core.files.base import ContentFile
    from PIL import Image

    buffer = BytesIO()
    Image.effect_mandelbrot((1024, 768), (-2.0, -1.2, 1.0, 1.2), 60).convert("RGB").save(
        buffer, format="JPEG", quality=85
    )
    return ContentFile(buffer.getvalue(), name=name)


def _environment(workdir: Path, ports: dict[str, int]) -> dict[str, str]:
    database = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{workdir / 'db.sqlite3'}"
    broker = os.environ.get("BENCH_BROKER_URL") or f"redis://127.0.0.1:{ports['broker']}/0"
    return {
        "DJANGO_SETTINGS_MODULE": "bench.settings",  # the app, and the /bench/ variants
        "DJANGO_DEBUG": "false",  # as in production: no query log, no debug pages
        "DJANGO_SECRET_KEY": "benchmark-only-" + "x" * 40,
        "DJANGO_SECURE_SSL_REDIRECT": "false",  # plain HTTP on loopback
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database,
        # The third parties' records in a file of their own, as they would be elsewhere: on
        # SQLite their writes would otherwise queue for the shop's write lock.
        "SANDBOX_DATABASE_URL": f"sqlite:///{workdir / 'sandbox.sqlite3'}",
        "CELERY_BROKER_URL": broker,
        "EMAIL_URL": f"smtp://127.0.0.1:{ports['smtp']}",
        "WEB_PORT": str(ports["web"]),
        "SANDBOX_ENABLED": "true",
        "SANDBOX_BASE_URL": f"http://127.0.0.1:{ports['sandbox']}/sandbox",
        "SANDBOX_MAILDIR": str(workdir / "mailbox"),
        "WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "true",
        "MEDIA_ROOT": str(workdir / "media"),
        "PRIVATE_MEDIA_ROOT": str(workdir / "private"),
        "STATIC_ROOT": str(workdir / "static"),
        "METRICS_TOKEN": "bench-metrics-token",  # bench.ledger_growth scrapes /metrics
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"

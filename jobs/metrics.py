"""Prometheus metrics of the job machinery: counters and histograms of what happened, counted
where it happens, and gauges of levels, read from the broker and the ledger at scrape time.

Events happen in many processes: gunicorn's workers and the publisher threads publish, Celery's
pool processes and threads run jobs, the relay publishes again. Counters and histograms use
prometheus_client's multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set: each process
writes its samples to files of its own in that directory (an mmap write per event, no query,
no lock across processes), and a scrape sums every file. Why this and not a push gateway or a
per-process port: no process needs to be reachable, a process that ended keeps its counts
(counters never go down while the host runs), and one scrape sees the whole host.

- One directory per host, never shared between hosts: emptied when the host's processes start
  (`make demo` and the tests' stack do it), or kept across their restart (docker-compose's
  containers do: a process whose pid comes again counts on in the old file).
- The web's `/metrics` serves its host's directory and, once, the level gauges.
- A host without a web process serves its directory with `METRICS_LISTEN=address:port`: the
  relay and each Celery worker's main process start a small HTTP server on it (give the
  address to one process per host). docs/deployment.md says how Prometheus scrapes them.

Without PROMETHEUS_MULTIPROC_DIR (a shell, the in-process test worker) the metrics count in
the process and `/metrics` serves those.

Flower serves Celery's own event-based metrics at its /metrics (per task name and worker).
"""

import logging
import os
from collections.abc import Iterator

from django.conf import settings
from django.db.models import F, Min, Q
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from jobs.clock import db_now
from jobs.models import Job

logger = logging.getLogger(__name__)

MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if MULTIPROCESS_DIR:
    # A process may start before anything made the directory (a worker alone on its host).
    os.makedirs(MULTIPROCESS_DIR, exist_ok=True)

PREFIX = "shop_"
# Every counter and histogram of the project registers here, the shop's too (shop.metrics).
# With a multiprocess directory the exposition reads their files instead; without one, this.
EVENTS = CollectorRegistry()

JOBS_FINISHED = Counter(
    "shop_jobs_finished_total",
    "Jobs that reached a final state, by job name and outcome (succeeded, dead, cancelled,"
    " skipped or declined).",
    ["job", "outcome"],
    registry=EVENTS,
)
JOB_RETRIES = Counter(
    "shop_jobs_retries_total",
    "Runs that failed with a transient error and scheduled a retry, by job name.",
    ["job"],
    registry=EVENTS,
)
DEAD_LETTERS = Counter(
    "shop_jobs_dead_letters_total",
    "Dead letters opened (new, or opened again after a requeue), by the dead job's name.",
    ["job"],
    registry=EVENTS,
)
PUBLISHED = Counter(
    "shop_jobs_published_total",
    "Job messages the broker took, by queue and by who sent them: commit (the request's "
    "publisher, an operator's requeue), relay (found unpublished, due or stalled), due "
    "(a scheduled job whose time came).",
    ["queue", "source"],
    registry=EVENTS,
)
PUBLISH_FAILURES = Counter(
    "shop_jobs_publish_failures_total",
    "Publishes the broker did not take (its jobs are left to the relay), by who sent them.",
    ["source"],
    registry=EVENTS,
)
# From a few milliseconds (an email to a local relay) to the hard time limit (minutes).
JOB_DURATION = Histogram(
    "shop_jobs_run_duration_seconds",
    "How long a run of a job took, from its claim to its end (whatever the end), by job name.",
    ["job"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
    registry=EVENTS,
)
# Milliseconds when workers keep up; seconds to minutes behind a backlog or an outage.
PICKUP_LATENCY = Histogram(
    "shop_jobs_pickup_latency_seconds",
    "How long a job waited from being recorded (or falling due, if scheduled) to the start of "
    "its first run, by queue.",
    ["queue"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
    registry=EVENTS,
)


class LevelsCollector(Collector):
    """Levels, read at scrape time: what the ledger and the broker hold now. The same figures
    from whichever web process answers, so a deployment with several web hosts aggregates
    them with max(), not sum() (ops/prometheus/alerts.yml)."""

    def collect(self) -> Iterator[Metric]:
        # Imported here: jobs.operations imports jobs.dispatch, which counts into this module.
        from jobs import operations

        stats = operations.stats()
        depth = GaugeMetricFamily(
            "shop_jobs_queue_depth", "Messages waiting in the queue.", labels=["queue"]
        )
        lag = GaugeMetricFamily(
            "shop_jobs_queue_lag_seconds",
            "How long the oldest published job of the queue has waited to start.",
            labels=["queue"],
        )
        paused = GaugeMetricFamily(
            "shop_jobs_queue_paused",
            "1 while an operator has paused the queue (workers take none of its messages).",
            labels=["queue"],
        )
        for queue in stats.queues:
            if queue.depth is not None:
                depth.add_metric([queue.queue], queue.depth)
            lag.add_metric([queue.queue], queue.oldest_age_s or 0.0)
            paused.add_metric([queue.queue], 1 if queue.paused else 0)
        jobs = GaugeMetricFamily(
            "shop_jobs_jobs", "Jobs in the ledger, by state.", labels=["state"]
        )
        for state, count in stats.jobs.items():
            jobs.add_metric([state], count)
        yield depth
        yield lag
        yield paused
        yield jobs
        yield GaugeMetricFamily(
            "shop_jobs_dead_letters_open",
            "Dead letters nobody has requeued or discarded.",
            value=stats.dead_letters_open,
        )
        yield GaugeMetricFamily(
            "shop_jobs_workers_online",
            "Workers whose heartbeat is recent.",
            value=stats.workers,
        )
        stalled = GaugeMetricFamily(
            "shop_jobs_stalled",
            "Jobs waiting to be taken up again, by why.",
            labels=["reason"],
        )
        for reason, count in stats.stalled.items():
            stalled.add_metric([reason], count)
        yield stalled
        yield GaugeMetricFamily(
            "shop_jobs_unpublished_oldest_age_seconds",
            "How long the oldest job that is due and not on the broker has waited for the "
            "relay: committed and never published, a retry or a scheduled job fallen due "
            "(0: none).",
            value=oldest_unpublished_age_s(),
        )


def oldest_unpublished_age_s() -> float:
    """Age of the oldest job the relay should have put on the broker; what "the relay is
    behind" is measured by. Each part reads an index (state, published_at / eta). By the
    database's clock, as the times it compares are written (jobs.clock)."""
    now = db_now()
    due_since = [
        Job.objects.filter(state=Job.State.QUEUED, published_at__isnull=True).aggregate(
            at=Min("created_at")
        )["at"],
        Job.objects.filter(state=Job.State.SCHEDULED, eta__lte=now).aggregate(at=Min("eta"))["at"],
        Job.objects.filter(state=Job.State.RETRYING, next_attempt_at__lte=now)
        .filter(Q(published_at__isnull=True) | Q(published_at__lt=F("next_attempt_at")))
        .aggregate(at=Min("next_attempt_at"))["at"],
    ]
    oldest = min((at for at in due_since if at is not None), default=None)
    return max(0.0, (now - oldest).total_seconds()) if oldest else 0.0


def _exposition_registry(*, levels: bool) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    if MULTIPROCESS_DIR:
        registry.register(_HostFiles())
    else:
        registry.register(_Events())
    if levels:
        registry.register(LevelsCollector())
    return registry


class _HostFiles(Collector):
    """The project's counters and histograms, summed over the files of every process of the
    host. Other libraries that count with prometheus_client in those processes write there
    too (Flower, started by the demo's Procfile with the host's environment): their metrics
    are theirs to serve, so only the project's own are read here."""

    def __init__(self) -> None:
        self._files = multiprocess.MultiProcessCollector(None, path=MULTIPROCESS_DIR)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterator[Metric]:
        for family in self._files.collect():  # type: ignore[no-untyped-call]
            if family.name.startswith(PREFIX):
                yield family


class _Events(Collector):
    """This process's counters and histograms, beside the levels in one registry."""

    def collect(self) -> Iterator[Metric]:
        yield from EVENTS.collect()


_host_registry = _exposition_registry(levels=False)
_web_registry = _exposition_registry(levels=True)


def exposition() -> tuple[bytes, str]:
    """The web's /metrics: this host's counters and histograms, and the level gauges."""
    return generate_latest(_web_registry), CONTENT_TYPE_LATEST


def serve_host_metrics() -> None:
    """Serve this host's counters and histograms on METRICS_LISTEN (`address:port`), if set:
    for hosts without a web process. Levels stay with the web's /metrics (they are the
    ledger's, not the host's: served from every worker host they would be counted again)."""
    listen = settings.METRICS_LISTEN
    if not listen:
        return
    address, _, port = listen.rpartition(":")
    try:
        start_http_server(int(port), addr=address or "127.0.0.1", registry=_host_registry)
    except OSError as exc:
        # Another process of this host serves it already: the directory is the host's.
        logger.warning("metrics: not serving on %s (%s)", listen, exc)
        return
    logger.info("metrics of this host on http://%s/metrics", listen)


def process_ended(pid: int) -> None:
    """Tell the multiprocess files that this process is gone (gunicorn's child_exit, Celery's
    worker_process_shutdown). Its counts stay: only live-process gauges would drop it, and
    there are none here, but this keeps the directory right if one is added."""
    if MULTIPROCESS_DIR:
        multiprocess.mark_process_dead(pid, path=MULTIPROCESS_DIR)  # type: ignore[no-untyped-call]

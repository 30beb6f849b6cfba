"""Prometheus metrics of the job machinery, read from the broker and the ledger at scrape time.

Flower serves Celery's own event-based metrics at its /metrics (per task name and worker);
these are the ones only the app knows: queue lag from the ledger, jobs by state, dead letters.
"""

from collections.abc import Iterator

from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from jobs import operations


class JobsCollector(Collector):
    def collect(self) -> Iterator[Metric]:
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
            "shop_jobs_finished_last_minute",
            "Jobs that ended in the last minute.",
            value=stats.finished_last_minute,
        )
        yield GaugeMetricFamily(
            "shop_jobs_failed_last_minute",
            "Jobs that went dead in the last minute.",
            value=stats.failed_last_minute,
        )
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


registry = CollectorRegistry(auto_describe=False)
registry.register(JobsCollector())

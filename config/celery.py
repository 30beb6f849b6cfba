"""The Celery application. Every setting lives in Django settings under the CELERY_ prefix."""

import os
import sys

from celery import Celery
from celery.signals import worker_init, worker_process_shutdown, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Its broker connections take kombu's Redis transports with one redis-py client per channel,
# not one per command (jobs/redis_transport.py); by name, imported when first connecting.
app = Celery("shop_jobs", amqp="jobs.redis_transport:AMQP")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each app declares its jobs in its own tasks.py (shop/tasks.py, webhooks/tasks.py, ...).
app.autodiscover_tasks()
# A worker takes no message from a paused queue, also after a restart (jobs.pauses). By name:
# the step's module reads the database, which is not set up when this module is imported.
app.steps["consumer"].add("jobs.pauses:HonourPausedQueues")


@worker_init.connect
def _switch_threads_often(**kwargs) -> None:
    """A thread-pool worker's threads mostly wait on sockets. CPython hands the interpreter
    lock from thread to thread every 5 ms by default, so a job whose answer has arrived may
    wait that long behind a thread that computes, at every query and call: jobs took 70 ms
    instead of 10, and messages waited in the consumer (bench/, "Pickup latency")."""
    from django.conf import settings

    sys.setswitchinterval(settings.WORKER_SWITCH_INTERVAL_SECONDS)


@worker_ready.connect
def _serve_host_metrics(**kwargs) -> None:
    """In the worker's main process, once its pool runs: serve this host's counters and
    histograms on METRICS_LISTEN, if set (jobs.metrics: for hosts without a web process)."""
    from jobs import metrics

    metrics.serve_host_metrics()


@worker_process_shutdown.connect
def _pool_process_ended(pid: int | None = None, **kwargs) -> None:
    """A prefork pool process ends (recycled, or the worker stops): see jobs.metrics."""
    from jobs import metrics

    metrics.process_ended(pid or os.getpid())

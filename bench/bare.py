"""Bare Celery: the same broker and worker settings as the app's jobs, and nothing else (no
Django, no ledger, no results, and kombu's own Redis transport, as Celery ships, not the app's
jobs.redis_transport). What the job machinery is measured against (section 2) and
the pickup latency of a job that does nothing but note when it started (section 5).

    celery -A bench.bare worker --pool=threads --concurrency=N --queues=bare
"""

import os
import time

import redis
from celery import Celery

BROKER_URL = os.environ["CELERY_BROKER_URL"]
QUEUE = "bare"
PICKUPS_KEY = "bench:bare:pickups"

app = Celery("bare", broker=BROKER_URL, set_as_current=False)
app.conf.update(
    # As config/settings.py sets them for the app's jobs.
    task_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_default_queue=QUEUE,
    broker_transport_options={"visibility_timeout": 600},
    worker_hijack_root_logger=False,
)
_results = redis.Redis.from_url(BROKER_URL)


@app.task(name="bare.noop")
def noop(**kwargs) -> None:
    """Does nothing: takes the same keyword arguments as the job it stands in for."""


@app.task(name="bare.note_pickup")
def note_pickup(sent_at: float) -> None:
    """Note how long the message took from `apply_async` to here (seconds)."""
    _results.rpush(PICKUPS_KEY, time.time() - sent_at)

"""The Celery application. Every setting lives in Django settings under the CELERY_ prefix."""

import os
import sys

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("shop_jobs")
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

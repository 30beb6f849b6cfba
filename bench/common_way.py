"""The same jobs, set up the way most Django projects set up Celery: the comparison of
section 3 of the benchmarks ("the common way").

- `.delay()` right after the write, one broker round trip per job, and no ledger: a job
  lost between commit and publish, or with its broker, is lost for good;
- Celery's defaults for delivery: acknowledged when taken (early), four messages prefetched
  per process, the prefork pool at one process per core;
- a result for every task in django-celery-results, as its documentation sets up;
- the review reminder as a broker countdown of an hour.

The tasks call the app's own services, so the work they do is the app's; only the machinery
around it differs. Not used by the app: `make bench` starts a worker for it
(`celery -A bench.common_way worker`) and the /bench/common/ views publish to it with
bench.common_tasks.
"""

import os

from celery import Celery
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Not the current app: in the web process the app's own Celery app must stay current. The
# tasks are in their own module, which the worker imports once Django is set up.
app = Celery("common_way", set_as_current=False, include=["bench.common_tasks"])
app.conf.update(
    broker_url=settings.CELERY_BROKER_URL,
    broker_transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
    result_backend="django-db",
    task_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
)

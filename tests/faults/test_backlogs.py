"""A backlog on one queue does not hold up the jobs of another."""

import pytest
from django.conf import settings

from jobs.models import Job
from stack.waiting import wait_until

pytestmark = pytest.mark.faults


def start_workers_as_deployed(app) -> None:
    """The worker layout of the Procfile and docker-compose.yml."""
    for name, queues in settings.JOBS_WORKER_QUEUES.items():
        pool = "prefork" if name == "media" else "threads"
        app.start_worker(name, pool=pool, concurrency=4, queues=",".join(queues))


def test_a_backlog_of_rate_limited_crm_jobs_does_not_hold_up_other_jobs(stack, catalogue):
    # A CRM allowing five calls a second: sixty syncs are twelve seconds of work, more than
    # the three workers take to start on a busy machine, so the backlog is still there when
    # they all run.
    app = stack(CRM_RATE_LIMIT="5/second")
    app.start_web(), app.start_mail()
    customer = app.sign_up("backlog@example.com")
    # Sixty CRM syncs, each followed by an analytics event that the collector takes at once.
    app.run_script("enqueue_crm_backlog", str(customer["customer"]["id"]), "60")
    start_workers_as_deployed(app)

    analytics = Job.objects.filter(name="jobs.track_analytics_event")
    wait_until(
        lambda: not analytics.exclude(state="succeeded").exists(),
        timeout=5,
        message="the analytics events to go through while the CRM backlog drains",
    )
    crm = Job.objects.filter(name="jobs.sync_crm_contact")
    assert crm.exclude(state="succeeded").count() > 10  # the backlog was still there
    # ... and it drains at the CRM's limit: Celery's own rate_limit let one through a second.
    wait_until(
        lambda: not crm.exclude(state="succeeded").exists(),
        timeout=30,
        message="sixty CRM syncs at five a second",
    )

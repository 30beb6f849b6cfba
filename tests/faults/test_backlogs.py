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
    crm = Job.objects.filter(name="jobs.sync_crm_contact")
    wait_until(
        lambda: not Job.objects.exclude(state="succeeded").exists(),
        timeout=60,
        message="sixty CRM syncs at five a second, and the analytics events",
    )
    # Read from the ledger's clocks, not the test's, so that a slow start of the workers on a
    # busy machine changes nothing: when the last analytics event was done, most of the CRM
    # backlog was still waiting. Behind it, the events would have been done one by one
    # between the syncs, the last of them with the last few syncs.
    last_analytics_done = max(analytics.values_list("finished_at", flat=True))
    assert crm.filter(finished_at__gt=last_analytics_done).count() > 30
    # ... and the backlog drained at the CRM's limit, across the crm worker's four threads.
    first, last = (
        min(crm.values_list("started_at", flat=True)),
        max(crm.values_list("finished_at", flat=True)),
    )
    assert (last - first).total_seconds() >= 59 / 5 - 1

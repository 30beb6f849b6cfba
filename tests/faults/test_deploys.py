"""A deploy (SIGTERM to a worker, as a supervisor or `docker stop` sends it) hands the jobs the
worker still runs back within its soft shutdown: another worker takes them up at once, and
they are not lost runs. The workers run with REMAP_SIGTERM=SIGQUIT, as deployed
(stack.processes, the Procfile, the image); the soft shutdown here is 3 s."""

import signal
import time

import pytest
from django.db import transaction

from jobs.dispatch import enqueue
from jobs.models import Job
from sandbox.models import CrmRecord
from shop.models import Customer, Order
from stack.waiting import wait_until
from tests.faults import slow_tasks
from tests.faults.helpers import wait_for_every_job_final

pytestmark = pytest.mark.faults

# The soft shutdown (3 s), the hand-back and the worker's exit, with room to spare; far less
# than the jobs below would take to finish.
DEPLOY_BOUND_SECONDS = 10


def stop_for_a_deploy(worker) -> float:
    stopped_at = time.monotonic()
    worker.popen.send_signal(signal.SIGTERM)
    worker.wait(DEPLOY_BOUND_SECONDS + 20)
    return time.monotonic() - stopped_at


def test_a_job_waiting_in_a_thread_is_handed_back_at_once(stack, catalogue):
    # One CRM call a minute: the order's deal sync waits for its turn in the worker's thread,
    # well past the soft shutdown.
    app = stack(CRM_RATE_LIMIT="1/minute")
    app.start_web(), app.start_mail(), app.start_relay()
    app.start_worker(
        "io", pool="threads", concurrency=4, queues="critical,default,bulk,webhooks,media"
    )
    worker = app.start_worker("crm", pool="threads", concurrency=4, queues="crm")
    customer = app.sign_up("deploy@example.com")
    contact = Customer.objects.get(pk=customer["customer"]["id"]).jobs.get(
        name="jobs.sync_crm_contact"
    )
    wait_until(  # the contact sync takes this minute's one call
        lambda: Job.objects.get(pk=contact.pk).state == "succeeded", message="the contact sync"
    )
    order_id = app.order(customer["token"], "MUG-001")["order"]["id"]
    deal = Order.objects.get(pk=order_id).jobs.get(name="jobs.sync_crm_deal")
    wait_until(lambda: Job.objects.get(pk=deal.pk).state == "running", message="a waiting deal")

    assert stop_for_a_deploy(worker) < DEPLOY_BOUND_SECONDS

    deal.refresh_from_db()
    assert (deal.state, deal.stalled_reason, deal.lost_runs) == ("queued", "handed_back", 0)
    handed_back_at = time.monotonic()
    app.start_worker(
        "crm2", pool="threads", concurrency=4, queues="crm", env={"CRM_RATE_LIMIT": "100/second"}
    )
    wait_until(
        lambda: Job.objects.get(pk=deal.pk).state == "succeeded",
        timeout=DEPLOY_BOUND_SECONDS,
        message="another worker to take the deal up at once",
    )
    assert time.monotonic() - handed_back_at < DEPLOY_BOUND_SECONDS
    deal.refresh_from_db()
    assert (deal.attempts, deal.lost_runs, deal.stalled_reason) == (2, 0, "")
    assert CrmRecord.objects.filter(kind="deal", external_key=f"order-{order_id}").count() == 1
    wait_for_every_job_final(message="the order's other jobs")


def test_a_job_computing_in_a_pool_process_is_handed_back_at_once(stack):
    app = stack()
    app.start_relay()
    media = {"pool": "prefork", "concurrency": 1, "queues": "media", "include": slow_tasks.__name__}
    worker = app.start_worker("media", **media)
    with transaction.atomic():
        long_job = enqueue(slow_tasks.compute_on_first_run.name, seconds=60)
    wait_until(lambda: Job.objects.get(pk=long_job.pk).state == "running", message="the job")

    assert stop_for_a_deploy(worker) < DEPLOY_BOUND_SECONDS

    long_job.refresh_from_db()
    assert (long_job.state, long_job.stalled_reason, long_job.lost_runs) == (
        "queued",
        "handed_back",
        0,
    )
    app.start_worker("media2", **media)
    wait_until(
        lambda: Job.objects.get(pk=long_job.pk).state == "succeeded",
        timeout=DEPLOY_BOUND_SECONDS,
        message="another worker to take the job up at once",
    )
    long_job.refresh_from_db()
    assert (long_job.attempts, long_job.lost_runs) == (2, 0)

"""A paused queue, with the workers as deployed (`celery worker` processes): a worker killed
and started again while the queue is paused does not take its messages; after the resume,
the jobs run once."""

import signal
import time

import pytest
from django.contrib.auth import get_user_model

from jobs.models import Job
from sandbox.models import CrmRecord
from shop.tokens import issue_token
from stack.waiting import wait_until

pytestmark = pytest.mark.faults

# Several of the stack's heartbeats (1 s): time for a worker to take what it would take.
QUIET_SECONDS = 5


def test_a_worker_killed_and_started_again_during_a_pause_does_not_take_the_queue(stack):
    app = stack()
    app.start_web(), app.start_mail(), app.start_relay()
    first = app.start_worker("crm", pool="threads", concurrency=4, queues="crm")
    staff = get_user_model().objects.create_user(username="ops@example.com", is_staff=True)
    token = issue_token(staff)

    paused = app.post("/api/ops/queues/crm/pause", {"reason": "CRM down"}, token=token)
    assert paused.status_code == 200, paused.text
    wait_until(lambda: "queue crm is paused" in first.output(), message="the worker to hear it")
    first.signal_group(signal.SIGKILL)
    first.wait(10)
    signup = app.sign_up("paused@example.com")
    sync = next(j["id"] for j in signup["jobs"] if j["name"] == "jobs.sync_crm_contact")
    wait_until(lambda: app.broker_client().llen("crm") == 1, message="the sync on the broker")

    second = app.start_worker("crm2", pool="threads", concurrency=4, queues="crm")
    time.sleep(QUIET_SECONDS)

    assert f"jobs.sync_crm_contact[{sync}] received" not in second.output()
    assert app.broker_client().llen("crm") == 1  # the message waits on the broker
    job = Job.objects.get(pk=sync)
    assert (job.state, job.attempts) == ("queued", 0)

    resumed = app.post("/api/ops/queues/crm/resume", {}, token=token)
    assert resumed.status_code == 200, resumed.text
    wait_until(lambda: Job.objects.get(pk=sync).state == "succeeded", message="the sync")
    assert Job.objects.get(pk=sync).attempts == 1
    assert CrmRecord.objects.filter(external_key="paused@example.com").count() == 1

"""Pausing a queue: real workers take none of its messages while it is paused, also a worker
started during the pause, and take them again once it is resumed (jobs.pauses, jobs.ledger)."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from celery.signals import task_received
from django.contrib.auth import get_user_model
from django.db import transaction

from jobs import ledger, operations
from jobs.dispatch import enqueue
from jobs.models import Job, OperatorAction, PausedQueue
from sandbox.models import CrmRecord
from shop.tokens import issue_token
from stack.waiting import wait_until
from tests.conftest import running_worker
from tests.factories import CustomerFactory

pytestmark = pytest.mark.integration

QUIET_SECONDS = 3.0  # how long a paused queue is watched for a delivery that must not come


@pytest.fixture
def staff(transactional_db):
    return get_user_model().objects.create_user(
        username="ops@example.com", email="ops@example.com", is_staff=True
    )


@pytest.fixture
def staff_api(api_client, staff):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(staff)}")
    return api_client


@pytest.fixture
def services(transactional_db, live_server, mailbox, empty_queues):
    """What a worker's jobs talk to (the sandboxes, over HTTP), and empty queues; the test
    starts and stops its workers itself."""
    return empty_queues


@contextmanager
def deliveries_of(queue: str) -> Iterator[list[str]]:
    """The ids of the messages of `queue` that workers of this process received."""
    seen: list[str] = []

    def received(sender=None, request=None, **kwargs) -> None:
        if request.delivery_info.get("routing_key") == queue:
            seen.append(request.id)

    task_received.connect(received, weak=False)
    try:
        yield seen
    finally:
        task_received.disconnect(received)


def crm_sync():
    customer = CustomerFactory()
    with transaction.atomic():
        job = enqueue("jobs.sync_crm_contact", concerning=customer, customer_id=customer.pk)
    wait_until(lambda: Job.objects.get(pk=job.pk).published_at, message="the job published")
    return str(job.pk), customer.user.email


def consumes(worker, queue: str) -> bool:
    return queue in worker.app.amqp.queues.consume_from


def settle(predicate, seconds: float = 10.0) -> None:
    """Give the workers a moment to act (the test's assertions say whether they did)."""
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.1)


def test_pausing_a_queue_stops_a_running_worker_taking_its_messages_until_resumed(
    services, staff_api, broker
):
    with running_worker() as worker, deliveries_of("crm") as delivered:
        paused = staff_api.post("/api/ops/queues/crm/pause", {"reason": "CRM down"}, format="json")
        assert paused.status_code == 200
        settle(lambda: not consumes(worker, "crm"))  # the broadcast reaches it
        job_id, email = crm_sync()

        time.sleep(QUIET_SECONDS)
        assert delivered == []  # the worker took nothing from the queue
        assert broker.llen("crm") == 1  # the message waits on the broker
        assert Job.objects.get(pk=job_id).state == "queued"

        resumed = staff_api.post("/api/ops/queues/crm/resume", {}, format="json")
        assert resumed.status_code == 200
        wait_until(lambda: Job.objects.get(pk=job_id).state == "succeeded", message="the run")
    assert CrmRecord.objects.filter(external_key=email).count() == 1
    assert delivered == [job_id]
    assert list(OperatorAction.objects.values_list("action", "queue", "reason")) == [
        ("resume", "crm", ""),
        ("pause", "crm", "CRM down"),
    ]


def test_a_pause_holds_across_a_worker_restart(services, staff, staff_api, broker):
    with running_worker() as worker:
        staff_api.post("/api/ops/queues/crm/pause", {"reason": "CRM down"}, format="json")
        wait_until(lambda: not consumes(worker, "crm"), message="the worker to stop taking crm")
    job_id, email = crm_sync()  # published while no worker runs

    # A new worker, started with every queue while crm is paused (a deploy, a crash).
    with deliveries_of("crm") as delivered, running_worker() as worker:
        time.sleep(QUIET_SECONDS)
        assert delivered == []
        assert broker.llen("crm") == 1
        assert Job.objects.get(pk=job_id).state == "queued"
        assert consumes(worker, "critical")  # the other queues are taken as ever

        operations.resume("crm", by=staff, reason="CRM is back")
        wait_until(lambda: Job.objects.get(pk=job_id).state == "succeeded", message="the run")
    assert CrmRecord.objects.filter(external_key=email).count() == 1


def test_a_message_taken_before_a_worker_heard_of_the_pause_goes_back_to_wait(
    services, staff, settings, broker
):
    """A worker may hold a message of the queue when the pause lands (its prefetch), or not
    have heard of the pause yet: the claim does not run the job but puts the message back, and
    the worker stops taking the queue."""
    settings.JOBS_HEARTBEAT_SECONDS = 600  # no reconcile on this worker's heartbeat
    with running_worker() as worker, deliveries_of("crm") as delivered:
        # Paused in the database only: no broadcast reaches the worker, which keeps consuming.
        PausedQueue.objects.create(queue="crm", paused_by=staff, reason="written directly")
        assert consumes(worker, "crm")
        job_id, email = crm_sync()

        wait_until(
            lambda: (delivered and broker.llen("crm") == 1) or Job.objects.get(pk=job_id).attempts,
            message="the message to come back, or the job to run",
        )
        job = Job.objects.get(pk=job_id)
        assert (job.state, job.attempts) == ("queued", 0)  # delivered, never run
        assert not CrmRecord.objects.filter(external_key=email).exists()
        wait_until(lambda: not consumes(worker, "crm"), message="the worker to stop taking crm")
        time.sleep(1)
        assert len(delivered) < 10  # taken once or a few times, not again and again

        operations.resume("crm", by=staff)
        wait_until(lambda: Job.objects.get(pk=job_id).state == "succeeded", message="the run")
    assert Job.objects.get(pk=job_id).attempts == 1
    assert CrmRecord.objects.filter(external_key=email).count() == 1


def test_a_cancelled_jobs_message_is_taken_and_dropped_without_effect(services, staff_api, broker):
    job_id, email = crm_sync()  # on the broker, no worker running yet
    cancelled = staff_api.post(
        f"/api/ops/jobs/{job_id}/cancel", {"reason": "customer asked"}, format="json"
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["job"]["state"] == "cancelled"

    with deliveries_of("crm") as delivered, running_worker():
        wait_until(lambda: delivered, message="the worker to take the message")
        wait_until(
            lambda: broker.llen("crm") == 0 and not broker.hlen("unacked"),
            message="the message acknowledged",
        )
    job = Job.objects.get(pk=job_id)
    assert (job.state, job.attempts, job.outcome_reason) == ("cancelled", 0, "customer asked")
    assert not CrmRecord.objects.filter(external_key=email).exists()


def race_a_cancel_against_two_claims(job_id: str, *, by) -> tuple[list[object], str]:
    """The outcomes of two claims and a cancel started at once, and the job's state after."""
    outcomes: list[object] = []
    start = threading.Barrier(3)

    def take() -> None:
        start.wait()
        outcomes.append(
            ledger.claim(
                job_id, retries=0, epoch=0, holder="t", lease_seconds=20, max_lost_runs=3
            ).outcome
        )

    def cancel() -> None:
        start.wait()
        try:
            operations.cancel(job_id, by=by, reason="race")
            outcomes.append("cancelled")
        except operations.Conflict:
            outcomes.append("refused")

    threads = [threading.Thread(target=f) for f in (take, take, cancel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes, Job.objects.get(pk=job_id).state


def test_a_cancel_racing_a_claim_one_of_them_wins(transactional_db, staff):
    """Two claims of one queued job and a cancel, at once: either the job ran once and the
    cancel was refused, or it was cancelled and no claim took it."""
    for _ in range(5):
        job = Job.objects.create(name="jobs.sync_crm_contact", queue="crm")
        outcomes, state = race_a_cancel_against_two_claims(str(job.pk), by=staff)
        runs = outcomes.count(ledger.Outcome.RUN)
        if state == "cancelled":
            assert (runs, "cancelled" in outcomes) == (0, True)
        else:
            assert (state, runs, "refused" in outcomes) == ("running", 1, True)

"""Jobs are published after commit, and never for a transaction that rolled back."""

import threading
import time

import pytest
from django.conf import settings
from django.db import connection, transaction

from jobs.dispatch import new_job, publisher
from jobs.models import Job
from shop import services
from stack.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def queue_lengths(broker) -> dict[str, int]:
    return {queue: broker.llen(queue) for queue in settings.QUEUES}


def sign_up_then_fail() -> None:
    with transaction.atomic():
        services.sign_up(email="gone@example.com", name="Gone", password="never-committed-1")
        raise RuntimeError("the request failed after the service ran")


def test_a_rolled_back_signup_records_and_publishes_nothing(empty_queues):
    with pytest.raises(RuntimeError, match="failed after the service ran"):
        sign_up_then_fail()
    time.sleep(0.5)  # what a commit hands the publisher is sent within milliseconds

    assert Job.objects.count() == 0
    assert sum(queue_lengths(empty_queues).values()) == 0


def test_a_committed_signup_publishes_its_jobs_to_their_queues(empty_queues):
    result = services.sign_up(
        email="kept@example.com", name="Kept", password="committed-for-good-1"
    )
    jobs = Job.objects.filter(pk__in=[job.pk for job in result.jobs])
    # Sent by the process's publisher thread, not by the request: wait for the messages, and
    # then for the rows' stamp, which the publisher writes once the broker has them.
    expected = {
        "critical": 1,
        "default": 0,
        "bulk": 1,
        "crm": 1,
        "media": 0,
        "webhooks": 0,
        "dead_letter": 0,
    }
    wait_until(lambda: queue_lengths(empty_queues) == expected, message="the messages")
    wait_until(lambda: not jobs.filter(published_at__isnull=True).exists(), message="the stamps")

    assert {job.publishes for job in jobs} == {1}  # one message each


def test_a_job_goes_out_while_its_row_is_locked_and_is_stamped_after(empty_queues):
    # The way from a commit to a worker holds no database write: the message goes out while
    # another transaction holds the row (on SQLite, the database's one write lock, as a
    # worker's claim or finish does), and the row is stamped published once it lets go.
    job = new_job("jobs.track_analytics_event", event_id="held", name="held", properties={})
    Job.objects.bulk_create([job])  # committed, as a request's would be, not handed over yet
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                Job.objects.filter(pk=job.pk).update(request_id="held")
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        publisher.submit([job])
        wait_until(lambda: empty_queues.llen("bulk") == 1, timeout=5, message="the message")
        assert Job.objects.get(pk=job.pk).published_at is None  # not stamped yet ...
    finally:
        release.set()
        holder.join()
    assert publisher.flush()
    job.refresh_from_db()
    assert job.published_at is not None  # ... and stamped once the lock was let go
    assert job.publishes == 1


def test_the_publisher_thread_outlives_an_error_after_a_batch(empty_queues, monkeypatch, caplog):
    # After each batch the thread lets go of its database connection; whatever that raises
    # (here pytest-django's RuntimeError, as a test without database access once made it
    # raise) is logged and the thread goes on: dead, its process would publish nothing more.
    from jobs import dispatch

    def refused() -> None:
        raise RuntimeError("Database access not allowed")

    monkeypatch.setattr(dispatch, "close_old_connections", refused)
    own_publisher = dispatch._Publisher()
    first, second = (
        new_job("jobs.track_analytics_event", event_id=n, name=n, properties={})
        for n in ("first", "second")
    )
    Job.objects.bulk_create([first, second])

    own_publisher.submit([first])
    assert own_publisher.flush()
    own_publisher.submit([second])

    assert own_publisher.flush()
    assert empty_queues.llen("bulk") == 2
    assert not Job.objects.filter(published_at__isnull=True).exists()
    assert "could not let go of its connection" in caplog.text  # said, not swallowed

"""What the relay publishes again, and what it leaves alone, on the real broker."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from jobs import relay
from jobs.dispatch import enqueue, publisher
from jobs.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


def ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def record(state: str, **fields) -> Job:
    return Job.objects.create(
        name="jobs.track_analytics_event",
        queue="bulk",
        kwargs={"event_id": "e", "name": "e", "properties": {}},
        state=state,
        **fields,
    )


def test_a_retry_is_published_once_when_it_falls_due(empty_queues):
    due = record("retrying", retries=1, next_attempt_at=ago(1), published_at=ago(30))
    later = record("retrying", retries=1, next_attempt_at=ago(-60), published_at=ago(30))

    assert relay.relay() == 1
    assert relay.relay() == 0  # published once, not every round

    due.refresh_from_db()
    assert due.publishes == 1
    assert empty_queues.llen("bulk") == 1
    later.refresh_from_db()
    assert later.publishes == 0


def test_a_dead_run_is_published_again_and_so_is_its_rescue_if_that_is_lost(empty_queues, settings):
    dead = record("running", lease_until=ago(30), published_at=ago(60), attempts=1)

    assert relay.relay() == 1
    dead.refresh_from_db()
    assert dead.stalled_reason == "worker_lost"
    assert relay.relay() == 0  # its rescue waits on the queue: nothing more

    empty_queues.delete("bulk")  # the rescue is lost with the broker
    Job.objects.filter(pk=dead.pk).update(published_at=ago(settings.JOBS_STALLED_AFTER_SECONDS + 1))
    assert relay.relay() == 1
    dead.refresh_from_db()
    assert (dead.stalled_reason, dead.publishes) == ("message_lost", 2)


def test_a_dead_run_never_stamped_published_is_published_again(empty_queues):
    """The publisher stamps `published_at` after the send: a worker that published a job (the
    charge records the confirmation email) and was killed before its stamp leaves the row
    unstamped, and a worker may have started the job meanwhile. If that run dies too, the row
    is running, its lease run out, and `published_at` empty: it must still be rescued (the
    kill storm of tests/faults/test_recovery.py found one left running for good)."""
    dead = record("running", lease_until=ago(30), published_at=None, attempts=1)

    assert relay.relay() == 1
    dead.refresh_from_db()
    assert (dead.stalled_reason, dead.publishes) == ("worker_lost", 1)
    assert empty_queues.llen("bulk") == 1
    assert relay.relay() == 0  # its rescue waits on the queue: nothing more


def test_a_backlog_is_not_published_again_but_a_lost_message_on_an_empty_queue_is(
    empty_queues, settings
):
    with transaction.atomic():
        waiting = enqueue("jobs.track_analytics_event", event_id="w", name="w", properties={})
    assert publisher.flush()
    assert empty_queues.llen("bulk") == 1
    # Published long ago and not started, behind the other message on its queue: a backlog.
    stale = ago(settings.JOBS_STALLED_AFTER_SECONDS + 1)
    Job.objects.filter(pk=waiting.pk).update(published_at=stale)
    assert relay.relay() == 0

    empty_queues.delete("bulk")  # gone: taken by a worker that died, or lost with the broker
    assert relay.relay() == 1
    waiting.refresh_from_db()
    assert waiting.stalled_reason == "message_lost"

"""Jobs are published after commit, and never for a transaction that rolled back."""

import time

import pytest
from django.conf import settings
from django.db import transaction

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
    # Sent by the process's publisher thread, not by the request: wait for the messages. (Not
    # for the rows' stamp: the publisher stamps a row before it sends, so that the relay does
    # not take it for stranded meanwhile.)
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

    assert not jobs.filter(published_at__isnull=True).exists()
    assert {job.publishes for job in jobs} == {1}  # one message each

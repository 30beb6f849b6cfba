"""jobs.operations.cancel_waiting: a service cancels the waiting jobs of a subject that a
business change made pointless, in its own transaction, with why."""

import pytest
from django.db import transaction

from jobs.dispatch import enqueue
from jobs.models import Job
from jobs.operations import cancel_waiting
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

EMAIL, CRM = "jobs.send_welcome_email", "jobs.sync_crm_contact"


def record(customer, name: str, **state) -> Job:
    job = enqueue(name, concerning=customer, customer_id=customer.pk)
    Job.objects.filter(pk=job.pk).update(**state)
    return job


def state(job: Job) -> tuple[str, str]:
    job.refresh_from_db()
    return job.state, job.outcome_reason


def test_only_the_named_jobs_of_the_subject_that_no_run_holds_are_cancelled():
    customer, other = CustomerFactory.create_batch(2)
    waiting = record(customer, EMAIL)
    retrying = record(customer, EMAIL, state=Job.State.RETRYING, attempts=1)
    running = record(customer, EMAIL, state=Job.State.RUNNING, attempts=1)
    handed_back = record(customer, EMAIL, stalled_reason=Job.Stall.HANDED_BACK)
    done = record(customer, EMAIL, state=Job.State.SUCCEEDED)
    other_name = record(customer, CRM)
    other_subject = record(other, EMAIL)

    with transaction.atomic():
        cancelled = cancel_waiting(concerning=customer, names=[EMAIL], reason="account closed")

    assert {job.pk for job in cancelled} == {waiting.pk, retrying.pk}
    assert state(waiting) == state(retrying) == ("cancelled", "account closed")
    assert state(running) == ("running", "")
    assert state(handed_back) == ("queued", "")
    assert state(done) == ("succeeded", "")
    assert state(other_name) == state(other_subject) == ("queued", "")


@pytest.mark.django_db(transaction=True)
def test_it_belongs_in_the_callers_transaction():
    with pytest.raises(RuntimeError):
        cancel_waiting(concerning=CustomerFactory(), names=[EMAIL], reason="why")


def test_a_rolled_back_transaction_cancels_nothing():
    customer = CustomerFactory()
    waiting = record(customer, EMAIL)

    def cancel_then_fail():
        with transaction.atomic():
            cancel_waiting(concerning=customer, names=[EMAIL], reason="account closed")
            raise RuntimeError("what the caller did next failed")

    with pytest.raises(RuntimeError):
        cancel_then_fail()

    assert state(waiting) == ("queued", "")

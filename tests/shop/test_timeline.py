"""The customer's order timeline (shop/timeline.py, the order page): each step in words a
customer understands, with its business outcome; nothing technical for a customer; the jobs
themselves for staff."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from jobs.models import Job
from shop import timeline
from shop.models import Order
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

CRM_ERROR = "TransientError: PUT http://127.0.0.1:8300/sandbox/crm/deals/order-3 answered 503"


def job(name: str, state: str, **fields) -> Job:
    fields.setdefault("queue", "default")
    fields.setdefault("stalled_reason", "")  # as a saved row has it (db_default)
    fields.setdefault("outcome_reason", "")
    return Job(name=name, state=state, **fields)


def outcomes(jobs: list[Job], **kwargs) -> list[tuple[str, str, str]]:
    return [
        (step.label, step.due, step.outcome) for step in timeline.order_steps(jobs=jobs, **kwargs)
    ]


def test_each_step_is_told_in_business_words_with_its_outcome():
    now = timezone.now()
    jobs = [
        job("jobs.charge_payment", "declined", outcome_reason="card declined: over the limit"),
        job("jobs.track_analytics_event", "succeeded"),
        job("jobs.sync_crm_deal", "succeeded"),
        job("jobs.send_review_reminder", "skipped", outcome_reason="the order was not paid"),
    ]

    assert outcomes(jobs, now=now) == [
        ("Payment", "", "Declined: your card was declined — over the limit"),
        ("Shop records updated", "", "Done"),
        ("Review request", "", "Not needed: the order was not paid"),
    ]


def test_a_planned_step_says_when_relative_to_now_and_a_paid_one_what_it_did():
    now = timezone.now()
    jobs = [
        job("jobs.charge_payment", "succeeded"),
        job("jobs.send_order_confirmation", "running"),
        job("jobs.send_review_reminder", "scheduled", eta=now + timedelta(seconds=3599.5)),
    ]

    assert outcomes(jobs, now=now) == [
        ("Payment", "", "Paid"),
        ("Order confirmation email", "", "In progress"),
        ("Review request", "in 1 hour", "Planned"),
    ]
    assert timeline.in_words(timedelta(minutes=4, seconds=10)) == "in 5 minutes"
    assert timeline.in_words(timedelta(hours=2, minutes=30)) == "in 2 hours 30 min"


def test_a_delay_says_until_when_never_why_technically(settings):
    now = timezone.now()
    retry_at = now + timedelta(minutes=3)
    # A worker silent for longer than two heartbeats: another takes its job up once the lease
    # it no longer renews runs out, in a few seconds.
    lease_until = now + timedelta(
        seconds=settings.JOBS_LEASE_SECONDS - 3 * settings.JOBS_HEARTBEAT_SECONDS
    )
    jobs = [
        job("jobs.sync_crm_deal", "retrying", next_attempt_at=retry_at, last_error=CRM_ERROR),
        job("jobs.charge_payment", "running", lease_until=lease_until, attempts=1),
        job("jobs.send_order_confirmation", "running", lease_until=now + timedelta(seconds=19)),
        # Its worker stopped for a deploy and handed it back: it waits on the broker again.
        job("jobs.send_review_reminder", "queued", stalled_reason="handed_back"),
    ]

    steps = timeline.order_steps(jobs=jobs, now=now)

    def clock(moment):
        # With its zone, as the order page's "Placed" shows it: a bare time is ambiguous.
        return f"{timezone.localtime(moment):%H:%M:%S} UTC"

    assert [step.outcome for step in steps] == [
        f"Delayed, trying again at {clock(retry_at)}",
        f"Waiting to be picked up again, by {clock(lease_until)}",
        "In progress",  # its worker was heard from a moment ago
        "Waiting to be picked up again, any moment now",
    ]
    assert not any("http" in step.outcome or "Error" in step.outcome for step in steps)


def test_a_job_of_the_machinery_is_never_a_step_and_a_steps_worst_job_speaks_for_it():
    jobs = [
        job("jobs.sync_crm_deal", "dead", last_error=CRM_ERROR),
        job("jobs.record_dead_letter", "succeeded", queue="dead_letter"),
        job("jobs.sync_crm_deal", "succeeded"),  # an earlier deal sync, say
        job("jobs.export_the_moon", "queued"),  # a job the timeline has no words for yet
    ]

    assert outcomes(jobs) == [
        ("Shop records updated", "", "Could not be completed; the shop's staff have been told"),
        ("Order processing", "", "Waiting to start"),
    ]


def test_every_order_job_the_shop_declares_has_words_for_its_customer():
    from celery import current_app

    import shop.tasks  # noqa: F401  (registers the shop's jobs)

    order_jobs = {
        name
        for name, task in current_app.tasks.items()
        if getattr(task, "claims_ledger_row", False)
        and "order_id" in getattr(task, "__wrapped__", task.run).__code__.co_varnames
    }
    assert order_jobs
    assert order_jobs <= set(timeline.LABELS)


# --- the order page -----------------------------------------------------------------------------


@pytest.fixture
def declined_order() -> Order:
    """A declined order whose CRM sync died, as the ledger has it after a CRM outage."""
    order: Order = OrderFactory.create(status=Order.Status.PAYMENT_FAILED)
    rows = [
        ("jobs.charge_payment", "critical", "declined", "", "card declined"),
        ("jobs.track_analytics_event", "bulk", "succeeded", "", ""),
        ("jobs.sync_crm_deal", "crm", "dead", CRM_ERROR, ""),
        ("jobs.send_review_reminder", "default", "skipped", "", "the order was not paid"),
        ("jobs.record_dead_letter", "dead_letter", "succeeded", "", ""),
    ]
    for name, queue, state, error, reason in rows:
        Job.objects.create(
            name=name,
            queue=queue,
            state=state,
            last_error=error,
            outcome_reason=reason,
            concerning=order,
            attempts=1,
            finished_at=timezone.now(),
        )
    return order


def test_the_customer_sees_the_steps_and_their_outcomes_and_nothing_technical(
    client, declined_order
):
    client.force_login(declined_order.customer.user)

    page = client.get(f"/orders/{declined_order.pk}").content.decode()
    fragment = client.get(f"/orders/{declined_order.pk}/timeline").content.decode()

    for html in (page, fragment):
        assert "Payment" in html
        assert "Declined: your card was declined" in html
        assert "Not needed: the order was not paid" in html
        assert "Shop records updated" in html
        assert "Could not be completed" in html
    for leak in ("http://", "Error", "503", "record_dead_letter", "sync_crm_deal", "crm</td>"):
        assert leak not in fragment, leak
    for leak in ("http://127.0.0.1", "TransientError", "record_dead_letter", "dead_letter"):
        assert leak not in page, leak
    for job_row in Job.objects.all():
        assert str(job_row.pk) not in page
    assert "(staff only)" not in page


def test_staff_see_the_same_steps_and_the_jobs_technical_detail(client, declined_order):
    staff = get_user_model().objects.create_user(
        username="ops@example.com", email="ops@example.com", is_staff=True
    )
    client.force_login(staff)

    fragment = client.get(f"/orders/{declined_order.pk}/timeline").content.decode()

    assert "Declined: your card was declined" in fragment  # what the customer sees, too
    assert "(staff only)" in fragment
    for detail in ("charge_payment", "record_dead_letter", "crm", "TransientError", "503"):
        assert detail in fragment, detail
    assert "card declined" in fragment  # reasons
    assert "the order was not paid" in fragment
    assert "state-declined" in fragment
    assert "state-skipped" in fragment

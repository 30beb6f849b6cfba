"""The operators' view and recovery workflow: /api/ops/ and /ops/."""

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction

from jobs import dead_letters
from jobs.dispatch import enqueue
from jobs.models import DeadLetter, Job, OperatorAction
from sandbox.models import CrmRecord
from sandbox.switches import set_switch
from shop.tasks import sync_crm_contact
from shop.tokens import issue_token
from stack.waiting import wait_until
from tests.factories import (
    CustomerFactory,
    DeadLetterFactory,
    JobFactory,
    OrderFactory,
    customer_with_token,
)


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user(
        username="ops@example.com",
        email="ops@example.com",
        password="x-ops-password-1",
        is_staff=True,
    )


@pytest.fixture
def staff_api(api_client, staff):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(staff)}")
    return api_client


def dead_job(customer, error="TransientError: CRM answered 503") -> DeadLetter:
    job = Job.objects.create(
        name="jobs.sync_crm_contact",
        kwargs={"customer_id": customer.pk},
        queue="bulk",
        state=Job.State.DEAD,
        attempts=3,
        concerning=customer,
    )
    return dead_letters.record(job_id=str(job.pk), error=error, traceback="Traceback: ...")


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/ops/stats", "/api/ops/dead-letters"])
def test_the_ops_api_is_for_staff_only(api_client, path):
    assert api_client.get(path).status_code == 401
    _, token = customer_with_token()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api_client.get(path).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_stats_count_what_waits_on_the_broker_and_how_long(staff_api, empty_queues):
    customer = CustomerFactory()
    with transaction.atomic():
        for _ in range(2):
            enqueue("jobs.sync_crm_contact", concerning=customer, customer_id=customer.pk)
    dead_job(customer)
    # Published from the publisher's thread, just after the commit.
    wait_until(
        lambda: not Job.objects.filter(published_at=None, state="queued").exists(),
        message="the jobs to be published",
    )

    body = staff_api.get("/api/ops/stats").json()

    queues = {q["queue"]: q for q in body["queues"]}
    assert set(queues) == {
        "critical",
        "default",
        "bulk",
        "crm",
        "media",
        "webhooks",
        "dead_letter",
    }
    assert queues["crm"]["depth"] == 2
    assert queues["crm"]["oldest_age_s"] >= 0
    assert queues["critical"] == {
        "queue": "critical",
        "depth": 0,
        "oldest_age_s": None,
        "paused": False,
        "paused_at": None,
        "pause_reason": "",
    }
    assert body["jobs"]["queued"] == 2
    assert body["jobs"]["dead"] == 1
    assert body["dead_letters_open"] == 1
    assert body["failed_last_minute"] == 0  # the hand-made dead job has no finish time
    assert body["workers"] == 0


@pytest.mark.django_db
def test_discard_needs_a_reason_and_is_audited(staff_api, staff):
    letter = dead_job(CustomerFactory())
    url = f"/api/ops/dead-letters/{letter.pk}/discard"

    assert staff_api.post(url, {}, format="json").status_code == 400
    assert staff_api.post(url, {"reason": "customer deleted"}, format="json").status_code == 204
    assert staff_api.post(url, {"reason": "again"}, format="json").status_code == 409

    letter.refresh_from_db()
    assert letter.status == "discarded"
    assert letter.resolved_by == staff
    [action] = OperatorAction.objects.all()
    assert (action.action, action.by, action.reason) == ("discard", staff, "customer deleted")
    assert staff_api.get("/api/ops/dead-letters").json() == {"dead_letters": []}


@pytest.mark.django_db
def test_a_requeued_job_that_dies_again_reopens_its_letter():
    customer = CustomerFactory()
    letter = dead_job(customer)
    staff = get_user_model().objects.create_user(username="s", is_staff=True)
    from jobs import operations

    operations.requeue(letter, by=staff)
    Job.objects.filter(pk=letter.job_id).update(state=Job.State.DEAD)
    again = dead_letters.record(job_id=str(letter.job_id), error="still 503", traceback="")

    assert again.pk == letter.pk
    assert again.status == "open"
    assert again.error == "still 503"
    assert DeadLetter.objects.count() == 1
    assert OperatorAction.objects.get().action == "requeue"


@pytest.mark.integration
def test_dead_letter_requeued_after_the_fix_succeeds_with_the_same_job(
    celery_worker, api_client, staff_api, monkeypatch
):
    monkeypatch.setattr(sync_crm_contact, "max_retries", 1)
    set_switch("crm", failure_rate=1.0)
    signup = api_client.post(
        "/api/signup",
        {"email": "later@example.com", "name": "Later", "password": "recovered-in-ops-1"},
        format="json",
    ).json()
    job_id = next(j["id"] for j in signup["jobs"] if j["name"] == "jobs.sync_crm_contact")
    wait_until(lambda: DeadLetter.objects.filter(job_id=job_id).exists(), message="dead letter")
    [letter] = staff_api.get("/api/ops/dead-letters").json()["dead_letters"]
    assert letter["job"]["id"] == job_id

    set_switch("crm", failure_rate=0.0)  # the CRM is fixed
    requeued = staff_api.post(f"/api/ops/dead-letters/{letter['id']}/requeue", {}, format="json")

    assert requeued.status_code == 200
    assert requeued.json()["job"]["id"] == job_id  # the same job, the same keys
    wait_until(lambda: Job.objects.get(pk=job_id).state == "succeeded", message="the rerun")
    assert CrmRecord.objects.filter(external_key="later@example.com").count() == 1
    assert DeadLetter.objects.get(job_id=job_id).status == "requeued"


@pytest.mark.django_db
def test_the_dashboard_requeues_and_discards_many_at_once(client, staff):
    customer = CustomerFactory()
    letters = [dead_job(customer) for _ in range(3)]
    client.force_login(staff)

    page = client.get("/ops/")
    assert page.status_code == 200
    assert b"Dead letters" in page.content
    no_reason = client.post(
        "/ops/dead-letters", {"action": "discard", "letter": [letters[0].pk]}, follow=True
    )
    assert any("reason" in str(m) for m in no_reason.context["messages"])
    client.post(
        "/ops/dead-letters", {"action": "requeue", "letter": [letters[0].pk, letters[1].pk]}
    )
    client.post(
        "/ops/dead-letters", {"action": "discard", "letter": [letters[2].pk], "reason": "test data"}
    )

    statuses = dict(DeadLetter.objects.values_list("pk", "status"))
    assert statuses == {
        letters[0].pk: "requeued",
        letters[1].pk: "requeued",
        letters[2].pk: "discarded",
    }
    assert OperatorAction.objects.filter(by=staff).count() == 3
    assert set(Job.objects.values_list("state", flat=True)) == {"queued", "dead"}
    assert client.get("/ops/stats").status_code == 200


@pytest.mark.django_db
def test_the_dashboard_is_for_staff_only(client):
    client.force_login(CustomerFactory().user)

    assert client.get("/ops/").status_code == 403
    assert client.post("/ops/dead-letters", {"action": "requeue"}).status_code == 403


@pytest.mark.django_db
def test_the_dashboard_says_what_each_job_is_about_and_links_an_orders_page(client, staff):
    order = OrderFactory()
    DeadLetterFactory(job__concerning=order)
    JobFactory(concerning=order.customer)
    client.force_login(staff)

    page = client.get("/ops/").content.decode()

    link = f'<a href="/orders/{order.pk}">order #{order.pk}</a>'
    assert page.count(link) == 2  # its dead letter, and its job among the recent ones
    assert f"customer #{order.customer.pk}" in page


@pytest.mark.django_db
@pytest.mark.parametrize("bad_id", ["²", "\u0661", "9" * 20, "-1", "1.0", ""])
def test_the_dashboard_passes_over_ticked_ids_that_are_no_letters_ids(client, staff, bad_id):
    # "²" is a digit to str.isdigit() and not to int(), nor is an Arabic-Indic 1 an id the
    # form sends; 20 nines overflow the column.
    letter = dead_job(CustomerFactory())
    client.force_login(staff)

    response = client.post(
        "/ops/dead-letters", {"action": "requeue", "letter": [bad_id, letter.pk]}
    )

    assert response.status_code == 302
    assert DeadLetter.objects.get(pk=letter.pk).status == "requeued"

"""What an operator can do besides looking: pause and resume a queue, cancel a job that has
not run, requeue or discard all dead letters matching a filter; on /ops/, in /api/ops/ and in
the admin, each audited. (The workers' side, on real workers: tests/jobs/test_queue_pause.py.)"""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from jobs import admin as jobs_admin
from jobs import dead_letters, ledger, operations, relay
from jobs.models import DeadLetter, Job, OperatorAction, PausedQueue
from shop.tokens import issue_token
from tests.factories import CustomerFactory, customer_with_token


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user(
        username="ops@example.com", email="ops@example.com", password="x-ops-1", is_staff=True
    )


@pytest.fixture
def staff_api(api_client, staff):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(staff)}")
    api_client.default_format = "json"  # the operations API takes JSON only (docs/api.md)
    return api_client


def dead_letter(name="jobs.sync_crm_contact", error="TransientError: CRM answered 503"):
    job = Job.objects.create(
        name=name, queue="crm", state=Job.State.DEAD, attempts=6, kwargs={"customer_id": 1}
    )
    return dead_letters.record(job_id=str(job.pk), error=error, traceback="")


def audit() -> list[tuple[str, str, str, str]]:
    """(action, queue, job name, reason), oldest first."""
    rows = OperatorAction.objects.order_by("at", "pk")
    return list(rows.values_list("action", "queue", "job_name", "reason"))


# --- pause and resume ------------------------------------------------------------------------


@pytest.mark.django_db
def test_pausing_needs_a_known_queue_and_a_reason_and_shows_in_stats_and_metrics(
    staff_api, staff, client, settings, empty_queues
):
    assert staff_api.post("/api/ops/queues/nope/pause", {"reason": "x"}).status_code == 404
    no_reason = staff_api.post("/api/ops/queues/crm/pause", {}, format="json")
    assert no_reason.status_code == 400
    assert "reason" in no_reason.json()["errors"]
    assert not PausedQueue.objects.exists()

    paused = staff_api.post("/api/ops/queues/crm/pause", {"reason": "CRM down"}, format="json")
    assert paused.json() == {"queue": "crm", "paused": True}
    again = staff_api.post("/api/ops/queues/crm/pause", {"reason": "again"}, format="json")
    assert again.status_code == 409
    assert "CRM down" in again.json()["detail"]

    queues = {q["queue"]: q for q in staff_api.get("/api/ops/stats").json()["queues"]}
    assert (queues["crm"]["paused"], queues["crm"]["pause_reason"]) == (True, "CRM down")
    assert queues["critical"]["paused"] is False
    settings.METRICS_TOKEN = "scrape-me"
    scraped = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").content.decode()
    assert 'shop_jobs_queue_paused{queue="crm"} 1.0' in scraped
    assert 'shop_jobs_queue_paused{queue="critical"} 0.0' in scraped

    assert staff_api.post("/api/ops/queues/crm/resume", {}, format="json").status_code == 200
    assert staff_api.post("/api/ops/queues/crm/resume", {}, format="json").status_code == 409
    assert not PausedQueue.objects.exists()
    assert audit() == [("pause", "crm", "", "CRM down"), ("resume", "crm", "", "")]
    assert set(OperatorAction.objects.values_list("by", flat=True)) == {staff.pk}


@pytest.mark.django_db
def test_a_claim_leaves_a_paused_queues_job_as_it_was(staff):
    job = Job.objects.create(name="jobs.sync_crm_contact", queue="crm")
    operations.pause("crm", by=staff, reason="CRM down")

    def take() -> ledger.Outcome:
        return ledger.claim(
            str(job.pk), retries=0, epoch=0, holder="w:1", lease_seconds=20, max_lost_runs=3
        ).outcome

    assert take() is ledger.Outcome.PAUSED
    job.refresh_from_db()
    assert (job.state, job.attempts) == ("queued", 0)
    operations.resume("crm", by=staff)
    assert take() is ledger.Outcome.RUN


# --- cancel ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_cancel_a_scheduled_job_and_beat_never_publishes_it(staff_api, staff):
    job = Job.objects.create(
        name="jobs.send_review_reminder",
        queue="default",
        state=Job.State.SCHEDULED,
        eta=timezone.now() + timedelta(hours=1),
    )
    response = staff_api.post(
        f"/api/ops/jobs/{job.pk}/cancel", {"reason": "order refunded"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["outcome_reason"] == "order refunded"
    Job.objects.filter(pk=job.pk).update(eta=timezone.now() - timedelta(seconds=1))  # now due
    assert relay.publish_due() == 0
    job.refresh_from_db()
    assert (job.state, job.outcome_reason, job.published_at) == (
        "cancelled",
        "order refunded",
        None,
    )
    assert job.is_final
    assert audit() == [("cancel", "default", "jobs.send_review_reminder", "order refunded")]


@pytest.mark.django_db
def test_cancel_a_retrying_job_and_the_relay_sends_no_retry(staff_api, empty_queues):
    job = Job.objects.create(
        name="jobs.sync_crm_contact",
        queue="crm",
        state=Job.State.RETRYING,
        attempts=2,
        retries=1,
        next_attempt_at=timezone.now() - timedelta(seconds=1),  # due
    )
    response = staff_api.post(f"/api/ops/jobs/{job.pk}/cancel", {"reason": "CRM contact gone"})

    assert response.status_code == 200
    assert relay.relay() == 0
    assert empty_queues.llen("crm") == 0
    job.refresh_from_db()
    assert (job.state, job.next_attempt_at) == ("cancelled", None)
    # A retry message sent before the cancel is dropped by the claim.
    claim = ledger.claim(
        str(job.pk), retries=2, epoch=0, holder="w:1", lease_seconds=20, max_lost_runs=3
    )
    assert claim.outcome is ledger.Outcome.FINISHED


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("state", "why"),
    [("running", "running"), ("succeeded", "ended already"), ("dead", "ended already")],
)
def test_a_job_that_runs_or_ended_cannot_be_cancelled(staff_api, state, why):
    job = Job.objects.create(name="jobs.sync_crm_contact", queue="crm", state=state)

    response = staff_api.post(f"/api/ops/jobs/{job.pk}/cancel", {"reason": "x"})

    assert response.status_code == 409
    assert why in response.json()["detail"]
    assert Job.objects.get(pk=job.pk).state == state
    assert not OperatorAction.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("job", "why"),
    [
        # Its stopping worker handed it back, but the run may still be finishing its effect.
        (
            {"name": "jobs.charge_payment", "state": "queued", "stalled_reason": "handed_back"},
            "handed it back",
        ),
        # Cancelling the writing of a dead letter would hide the dead job from everyone.
        ({"name": "jobs.record_dead_letter", "state": "queued"}, "own jobs"),
    ],
)
def test_a_job_being_handed_back_or_of_the_machinery_cannot_be_cancelled(staff_api, job, why):
    job = Job.objects.create(queue="critical", **job)

    response = staff_api.post(f"/api/ops/jobs/{job.pk}/cancel", {"reason": "x"})

    assert response.status_code == 409
    assert why in response.json()["detail"]
    assert Job.objects.get(pk=job.pk).state == "queued"
    assert not OperatorAction.objects.exists()


@pytest.mark.django_db
def test_cancel_needs_a_reason_and_an_existing_job(staff_api):
    job = Job.objects.create(name="jobs.sync_crm_contact", queue="crm")

    missing = staff_api.post(f"/api/ops/jobs/{job.pk}/cancel", {"reason": "  "}, format="json")
    assert missing.status_code == 400
    assert "reason" in missing.json()["errors"]
    unknown = "00000000-0000-0000-0000-000000000000"
    assert staff_api.post(f"/api/ops/jobs/{unknown}/cancel", {"reason": "x"}).status_code == 404
    assert Job.objects.get(pk=job.pk).state == "queued"


# --- dead letters by filter ------------------------------------------------------------------


@pytest.mark.django_db
def test_requeue_and_discard_act_on_exactly_the_open_letters_matching_and_audit_each(
    staff_api, staff
):
    crm_503 = [dead_letter() for _ in range(3)]
    crm_400 = dead_letter(error="PermanentError: CRM refused the contact")
    deal_503 = dead_letter(name="jobs.sync_crm_deal")
    closed = dead_letter()
    operations.discard(closed, by=staff, reason="earlier")

    requeued = staff_api.post(
        "/api/ops/dead-letters/requeue",
        {"job_name": "jobs.sync_crm_contact", "error_contains": "answered 503"},
        format="json",
    )
    assert requeued.json() == {"acted_on": 3, "left": 0}
    no_reason = staff_api.post(
        "/api/ops/dead-letters/discard", {"error_contains": "crm"}, format="json"
    )
    assert no_reason.status_code == 400
    no_filter = staff_api.post("/api/ops/dead-letters/discard", {"reason": "x"}, format="json")
    assert no_filter.status_code == 400
    assert "job_name" in no_filter.json()["errors"]
    discarded = staff_api.post(
        "/api/ops/dead-letters/discard",
        {"error_contains": "REFUSED", "reason": "contact invalid"},
        format="json",
    )
    assert discarded.json() == {"acted_on": 1, "left": 0}

    status = dict(DeadLetter.objects.values_list("pk", "status"))
    assert [status[letter.pk] for letter in crm_503] == ["requeued"] * 3
    assert (status[crm_400.pk], status[deal_503.pk], status[closed.pk]) == (
        "discarded",
        "open",
        "discarded",
    )
    assert set(Job.objects.filter(dead_letter__in=crm_503).values_list("state", flat=True)) == {
        "queued"
    }
    actions = OperatorAction.objects.exclude(reason="earlier")
    assert sorted(actions.values_list("action", "letter")) == sorted(
        [("requeue", letter.pk) for letter in crm_503] + [("discard", crm_400.pk)]
    )


@pytest.mark.django_db
def test_the_dashboard_previews_the_match_then_acts_on_all_of_it(client, staff):
    for _ in range(2):
        dead_letter()
    other = dead_letter(name="jobs.sync_crm_deal")
    client.force_login(staff)

    page = client.get(
        "/ops/", {"letter_name": "jobs.sync_crm_contact", "letter_error": "503"}
    ).content.decode()
    assert '<strong id="matching-count">2</strong>' in page
    client.post(
        "/ops/dead-letters/matching",
        {
            "action": "discard",
            "job_name": "jobs.sync_crm_contact",
            "error_contains": "503",
            "reason": "test data",
        },
    )

    assert DeadLetter.objects.filter(status="discarded").count() == 2
    assert DeadLetter.objects.get(pk=other.pk).status == "open"
    page = client.get("/ops/").content.decode()
    assert page.count("test data") == 2  # what operators did: one row per letter


@pytest.mark.django_db
def test_a_bulk_action_takes_a_batch_at_a_time_oldest_first_and_says_how_many_are_left(
    staff_api, client, staff, monkeypatch
):
    """However many letters match, one request acts on a batch (each letter a transaction of
    its own) and ends; the next takes up where it stopped."""
    monkeypatch.setattr(operations, "MATCHING_AT_A_TIME", 2)
    letters = [dead_letter() for _ in range(5)]
    crm = {"job_name": "jobs.sync_crm_contact"}

    def statuses() -> list[str]:
        status = dict(DeadLetter.objects.values_list("pk", "status"))
        return [status[letter.pk] for letter in letters]

    first = staff_api.post("/api/ops/dead-letters/requeue", crm, format="json")
    assert first.json() == {"acted_on": 2, "left": 3}
    assert statuses() == ["requeued", "requeued", "open", "open", "open"]

    client.force_login(staff)
    preview = client.get("/ops/", {"letter_name": crm["job_name"]}).content.decode()
    assert "Requeue the oldest 2" in preview
    page = client.post(
        "/ops/dead-letters/matching", {"action": "requeue", **crm}, follow=True
    ).content.decode()
    assert "Requeued 2 dead letters. 1 more match: requeue again to act on them." in page
    assert "Requeue all 1" in page

    last = staff_api.post("/api/ops/dead-letters/requeue", crm, format="json")
    assert last.json() == {"acted_on": 1, "left": 0}
    assert statuses() == ["requeued"] * 5
    assert OperatorAction.objects.filter(action="requeue").count() == 5


# --- /ops/ -----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/ops/", "/ops/stats"])
def test_the_dashboard_sends_an_anonymous_visitor_to_the_shops_login(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/login?next={path}"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["/ops/queues/crm/pause", "/ops/dead-letters/matching", "/ops/dead-letters"],
)
def test_the_dashboards_actions_are_refused_to_all_but_staff(client, path):
    assert client.post(path, {"reason": "x"})["Location"].startswith("/login?next=")
    client.force_login(CustomerFactory().user)
    assert client.post(path, {"reason": "x"}).status_code == 403
    assert not PausedQueue.objects.exists()


@pytest.mark.django_db
def test_the_dashboard_pauses_resumes_and_cancels_and_shows_what_operators_did(client, staff):
    job = Job.objects.create(name="jobs.sync_crm_contact", queue="crm")
    client.force_login(staff)

    client.post("/ops/queues/crm/pause", {"reason": "CRM maintenance"})
    page = client.get("/ops/").content.decode()
    assert "paused since" in page
    assert "Resume crm" in page
    refused = client.post(f"/ops/jobs/{job.pk}/cancel", {"reason": ""}, follow=True)
    assert any("reason is required" in str(m) for m in refused.context["messages"])
    client.post(f"/ops/jobs/{job.pk}/cancel", {"reason": "duplicate"})
    client.post("/ops/queues/crm/resume", {})

    assert Job.objects.get(pk=job.pk).state == "cancelled"
    assert audit() == [
        ("pause", "crm", "", "CRM maintenance"),
        ("cancel", "crm", "jobs.sync_crm_contact", "duplicate"),
        ("resume", "crm", "", ""),
    ]
    page = client.get("/ops/").content.decode()
    assert "CRM maintenance" in page
    assert "duplicate" in page


@pytest.mark.django_db
def test_the_ops_api_actions_are_for_staff_only(api_client):
    _, token = customer_with_token()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    for path in ["/api/ops/queues/crm/pause", "/api/ops/dead-letters/requeue"]:
        assert api_client.post(path, {"reason": "x", "job_name": "x"}).status_code == 403
    assert not PausedQueue.objects.exists()


# --- admin -----------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, staff):
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    return client


@pytest.mark.django_db
def test_the_admin_deletes_no_dead_letter_and_no_job_that_has_one(admin_client):
    letter = dead_letter()

    changelist = admin_client.get("/admin/jobs/deadletter/").content.decode()
    assert "delete_selected" not in changelist
    assert admin_client.get(f"/admin/jobs/deadletter/{letter.pk}/delete/").status_code == 403
    admin_client.post(f"/admin/jobs/job/{letter.job_id}/delete/", {"post": "yes"})
    assert DeadLetter.objects.filter(pk=letter.pk).exists()


@pytest.mark.django_db
def test_the_admin_discards_with_a_reason_asked_on_a_confirmation_page(admin_client, staff):
    letters = [dead_letter() for _ in range(2)]
    chosen = {"action": "discard_letters", "_selected_action": [x.pk for x in letters]}

    confirm = admin_client.post("/admin/jobs/deadletter/", chosen)
    assert confirm.status_code == 200
    assert "required, for the audit" in confirm.content.decode()
    no_reason = admin_client.post("/admin/jobs/deadletter/", {**chosen, "apply": "1"})
    assert "A reason is required" in no_reason.content.decode()
    assert not DeadLetter.objects.exclude(status="open").exists()

    admin_client.post("/admin/jobs/deadletter/", {**chosen, "apply": "1", "reason": "spam"})
    assert set(DeadLetter.objects.values_list("status", flat=True)) == {"discarded"}
    assert (
        list(OperatorAction.objects.values_list("action", "reason", "by"))
        == [("discard", "spam", staff.pk)] * 2
    )


@pytest.mark.django_db
def test_the_admin_requeues_cancels_and_pauses_through_the_audit(admin_client):
    letter = dead_letter()
    queued = Job.objects.create(name="jobs.sync_crm_contact", queue="crm")

    admin_client.post(
        "/admin/jobs/deadletter/",
        {"action": "requeue_letters", "_selected_action": [letter.pk], "apply": "1"},
    )
    admin_client.post(
        "/admin/jobs/job/",
        {"action": "cancel_jobs", "_selected_action": [queued.pk], "apply": "1", "reason": "dup"},
    )
    admin_client.post("/admin/jobs/pausedqueue/add/", {"queue": "media", "reason": "disk full"})

    assert DeadLetter.objects.get(pk=letter.pk).status == "requeued"
    assert Job.objects.get(pk=queued.pk).state == "cancelled"
    paused = PausedQueue.objects.get()
    assert paused.queue == "media"
    # Shown, not edited: saving it again would pause it twice.
    shown = admin_client.get(f"/admin/jobs/pausedqueue/{paused.pk}/change/").content.decode()
    assert "disk full" in shown
    assert 'name="_save"' not in shown
    assert [a for a, *_ in audit()] == ["requeue", "cancel", "pause"]


@pytest.mark.django_db
def test_the_jobs_admin_lists_the_newest_first(admin_client):
    older = Job.objects.create(name="jobs.sync_crm_contact", queue="crm")
    newer = Job.objects.create(name="jobs.sync_crm_deal", queue="crm")
    Job.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(hours=1))

    page = admin_client.get("/admin/jobs/job/").content.decode()

    assert page.index(str(newer.pk)) < page.index(str(older.pk))


@pytest.mark.django_db
def test_the_jobs_admin_narrows_by_queue_and_name_and_finds_a_job_by_its_id(admin_client):
    contact = Job.objects.create(name="jobs.sync_crm_contact", queue="crm")
    email = Job.objects.create(name="jobs.send_welcome_email", queue="default")

    def listed(**query: str) -> set[str]:
        page = admin_client.get("/admin/jobs/job/", query).content.decode()
        return {str(job.pk) for job in (contact, email) if str(job.pk) in page}

    assert listed() == {str(contact.pk), str(email.pk)}
    assert listed(queue__exact="crm") == {str(contact.pk)}
    assert listed(name__exact="jobs.send_welcome_email") == {str(email.pk)}
    assert listed(q=str(email.pk)) == {str(email.pk)}
    assert listed(q=str(email.pk).upper()) == {str(email.pk)}
    assert listed(q="send_welcome") == set()  # an id, not a substring of every row
    # The choices are what the code knows, also a queue and a job that have no rows yet.
    sidebar = admin_client.get("/admin/jobs/job/").content.decode()
    assert "?queue__exact=media" in sidebar
    assert "?name__exact=jobs.make_avatar_thumbnails" in sidebar


@pytest.mark.django_db
def test_the_admin_counts_a_long_list_only_up_to_its_cap(admin_client, monkeypatch):
    monkeypatch.setattr(jobs_admin.CappedCountPaginator, "cap", 3)
    monkeypatch.setattr(jobs_admin.JobAdmin, "list_per_page", 2)
    for _ in range(5):
        Job.objects.create(name="jobs.sync_crm_contact", queue="crm")

    long = admin_client.get("/admin/jobs/job/").content.decode()
    short = admin_client.get("/admin/jobs/job/", {"queue__exact": "crm", "q": ""}).content.decode()
    one = Job.objects.first()
    found = admin_client.get("/admin/jobs/job/", {"q": str(one.pk)}).content.decode()

    assert "more than 3 jobs" in long
    assert "Select all 4" not in long  # no selection across pages: an action takes fewer
    assert "Select all of" not in long
    assert "more than 3 jobs" in short
    assert "more than 3 results" in short  # the search bar's count
    assert "1 job" in found
    assert "more than" not in found


@pytest.mark.django_db
def test_an_admin_action_on_more_than_it_can_do_in_one_request_is_refused(
    admin_client, monkeypatch
):
    monkeypatch.setattr(jobs_admin, "MAX_SELECTED", 2)
    jobs = [Job.objects.create(name="jobs.sync_crm_contact", queue="crm") for _ in range(3)]

    page = admin_client.post(
        "/admin/jobs/job/",
        {
            "action": "cancel_jobs",
            "_selected_action": [job.pk for job in jobs],
            "apply": "1",
            "reason": "dup",
        },
        follow=True,
    ).content.decode()

    assert "select at most 2 at a time" in page
    assert set(Job.objects.values_list("state", flat=True)) == {"queued"}
    assert not OperatorAction.objects.exists()
    # Django's own "Delete selected" too: it gathers every row for its confirmation page.
    page = admin_client.post(
        "/admin/jobs/job/",
        {"action": "delete_selected", "_selected_action": [job.pk for job in jobs]},
        follow=True,
    ).content.decode()
    assert "Delete: select at most 2 at a time" in page
    assert Job.objects.count() == 3


@pytest.mark.django_db
def test_the_ledgers_admin_lists_sort_only_by_what_an_index_orders(admin_client):
    """A sort by state or attempts reads and sorts the whole table; the lists offer none."""
    Job.objects.create(name="jobs.sync_crm_contact", queue="crm")
    jobs = admin_client.get("/admin/jobs/job/").content.decode()
    effects = admin_client.get("/admin/jobs/effect/").content.decode()

    assert "?o=" in jobs  # the creation time's header
    assert 'class="column-state"' in jobs
    assert 'class="sortable column-state' not in jobs
    assert 'class="sortable' not in effects
    assert "Show counts" not in jobs


# --- the audit's migration -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_dead_letters_audit_moves_into_the_operators_audit():
    executor = MigrationExecutor(connection)
    before = [("jobs", "0007_heartbeats_holders_and_stalls")]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    user = old.get_model("auth", "User").objects.create(username="old-ops", is_staff=True)
    job = old.get_model("jobs", "Job").objects.create(name="jobs.sync_crm_contact", queue="crm")
    now = timezone.now()
    letter = old.get_model("jobs", "DeadLetter").objects.create(
        job=job, error="e", attempts=1, first_failed_at=now, failed_at=now
    )
    action = old.get_model("jobs", "DeadLetterAction").objects.create(
        letter=letter, action="discard", by=user, reason="old reason"
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    moved = OperatorAction.objects.get()
    assert (moved.action, moved.by_id, moved.reason, moved.at) == (
        "discard",
        user.pk,
        "old reason",
        action.at,
    )
    assert (moved.letter_id, moved.job_id, moved.job_name, moved.queue) == (
        letter.pk,
        job.pk,
        "jobs.sync_crm_contact",
        "crm",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/ops/queues/crm/pause", {"reason": 1303732888962}, "reason"),
        ("/api/ops/dead-letters/requeue", {"job_name": 1}, "job_name"),
        (
            "/api/ops/dead-letters/discard",
            {"error_contains": ["x"], "reason": "r"},
            "error_contains",
        ),
        ("/api/ops/dead-letters/discard", {"job_name": "jobs.x", "reason": True}, "reason"),
    ],
)
def test_the_ops_api_takes_text_as_json_strings_only(staff_api, path, body, field):
    # DRF's CharField turns a number or a boolean into its text; the schema says string.
    response = staff_api.post(path, body, format="json")

    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == [field]
    assert not PausedQueue.objects.exists()
    assert not OperatorAction.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["requeue", "discard"])
def test_a_dead_letter_that_is_not_there_is_a_404_that_names_no_model(staff_api, action):
    response = staff_api.post(f"/api/ops/dead-letters/999999/{action}", {"reason": "x"})

    assert response.status_code == 404
    assert response.json() == {"detail": "No such dead letter."}

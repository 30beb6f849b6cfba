"""Signup, end to end: HTTP request, real broker, real worker, real sandboxes over HTTP."""

from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django_celery_results.models import TaskResult
from PIL import Image

from jobs import base as jobs_base
from jobs.models import DeadLetter, Effect, Job
from sandbox.mailbox import duplicates_suppressed
from sandbox.models import AnalyticsEvent, CrmRecord, ReceivedRequest
from sandbox.switches import set_switch
from shop.models import Customer
from shop.tasks import sync_crm_contact
from stack.waiting import wait_until
from tests.helpers import png_bytes

pytestmark = pytest.mark.integration


def sign_up(api_client, email="ada@example.com", avatar=True):
    data = {"email": email, "name": "Ada Lovelace", "password": "analytical-engine-1843"}
    if avatar:
        data["avatar"] = SimpleUploadedFile("ada.png", png_bytes(), content_type="image/png")
    response = api_client.post("/api/signup", data, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


def all_final(job_ids):
    return all(job.is_final for job in Job.objects.filter(pk__in=job_ids))


def test_signup_runs_every_job_once_and_reaches_every_third_party(
    celery_worker, api_client, mailbox
):
    body = sign_up(api_client)
    job_ids = [job["id"] for job in body["jobs"]]
    assert {job["name"] for job in body["jobs"]} == {
        "jobs.send_welcome_email",
        "jobs.make_avatar_thumbnails",
        "jobs.track_analytics_event",
        "jobs.sync_crm_contact",
    }

    wait_until(lambda: all_final(job_ids), message="every signup job to finish")

    assert set(Job.objects.filter(pk__in=job_ids).values_list("state", flat=True)) == {"succeeded"}
    welcome = [m for m in mailbox() if m.to == "ada@example.com"]
    assert len(welcome) == 1
    assert "Welcome" in welcome[0].subject
    # A link the customer can follow, to where the shop is served (SITE_URL).
    assert f"{settings.SITE_URL}/\n" in welcome[0].body
    assert duplicates_suppressed() == 0  # the mailbox files a resent Message-ID aside

    customer_id = body["customer"]["id"]
    thumbnails = {
        size: Path(settings.MEDIA_ROOT, f"avatars/thumbs/{customer_id}-{size}.png")
        for size in settings.AVATAR_THUMBNAIL_SIZES
    }
    for size, path in thumbnails.items():
        with Image.open(path) as image:
            assert max(image.size) == size

    # The two effects the app itself performs are keyed and marked done.
    done = Effect.objects.filter(done_at__isnull=False).values_list("key", flat=True)
    assert sorted(key.split(":")[0] for key in done) == ["thumbnails", "welcome-email"]
    assert AnalyticsEvent.objects.filter(event_id=f"signed_up:{customer_id}").count() == 1
    contact = CrmRecord.objects.get(kind="contact", external_key="ada@example.com")
    assert contact.writes == 1
    assert contact.data["name"] == "Ada Lovelace"


# Valid addresses with characters that mean something in a URL: the CRM keys its contacts by
# the address, in the path of its URL.
ADDRESSES_THAT_MEAN_SOMETHING_IN_A_URL = [
    "a/b@example.com",
    "a%2fb@example.com",
    "a?b#c@example.com",
    "a+b&c=d@example.com",
    "a/./b@example.com",
    "ann@exämple.com",
    "x@[127.0.0.1]",
]


def test_any_valid_address_syncs_to_the_crm_under_exactly_that_address(celery_worker, api_client):
    crm_jobs = {}
    for email in ADDRESSES_THAT_MEAN_SOMETHING_IN_A_URL:
        body = sign_up(api_client, email=email, avatar=False)
        assert body["customer"]["email"] == email
        crm_jobs[email] = next(
            j["id"] for j in body["jobs"] if j["name"] == "jobs.sync_crm_contact"
        )

    wait_until(lambda: all_final(crm_jobs.values()), message="every CRM job to finish")

    states = {email: Job.objects.get(pk=job_id).state for email, job_id in crm_jobs.items()}
    assert states == dict.fromkeys(ADDRESSES_THAT_MEAN_SOMETHING_IN_A_URL, "succeeded")
    contacts = CrmRecord.objects.filter(kind="contact")
    assert sorted(contacts.values_list("external_key", flat=True)) == sorted(
        ADDRESSES_THAT_MEAN_SOMETHING_IN_A_URL
    )
    assert all(contact.writes == 1 for contact in contacts)
    assert not DeadLetter.objects.filter(job_id__in=crm_jobs.values()).exists()


def test_a_crm_that_fails_twice_is_retried_with_growing_delays(
    celery_worker, api_client, monkeypatch
):
    # Each delay drawn at the top of its step (2 s, then 4 s): its growth is then larger than
    # what the relay's rounds and the calls add to a delay.
    monkeypatch.setattr(jobs_base, "random", SimpleNamespace(uniform=lambda low, high: high))
    set_switch("crm", fail_next=2)

    body = sign_up(api_client, avatar=False)
    crm_job_id = next(j["id"] for j in body["jobs"] if j["name"] == "jobs.sync_crm_contact")
    wait_until(lambda: Job.objects.get(pk=crm_job_id).is_final, message="the CRM job to finish")

    job = Job.objects.get(pk=crm_job_id)
    assert job.state == "succeeded"
    assert job.attempts == 3
    assert job.publishes == 3  # each retry waited in the ledger; the relay published it
    calls = list(ReceivedRequest.objects.filter(service="crm").order_by("created_at"))
    assert [call.status_code for call in calls] == [503, 503, 200]
    first_delay = (calls[1].created_at - calls[0].created_at).total_seconds()
    second_delay = (calls[2].created_at - calls[1].created_at).total_seconds()
    assert first_delay >= settings.JOBS_RETRY_BACKOFF_SECONDS
    assert second_delay >= 2 * settings.JOBS_RETRY_BACKOFF_SECONDS  # twice the first
    assert second_delay <= 2 * settings.JOBS_RETRY_BACKOFF_SECONDS + 1  # capped by the schedule
    assert not DeadLetter.objects.exists()


def test_a_job_that_succeeds_after_a_failed_attempt_leaves_no_failure_in_the_task_results(
    celery_worker, api_client, monkeypatch
):
    """The task results (the admin's, django-celery-results) agree with the ledger: while the
    job waits for its retry they say why, with the traceback; once it has succeeded they hold
    nothing that says it failed."""
    # The delay at the top of its step (2 s): time enough to look at the result of the retry.
    monkeypatch.setattr(jobs_base, "random", SimpleNamespace(uniform=lambda low, high: high))
    set_switch("crm", fail_next=1)

    body = sign_up(api_client, avatar=False)
    crm_job_id = next(j["id"] for j in body["jobs"] if j["name"] == "jobs.sync_crm_contact")
    retry = wait_until(
        lambda: TaskResult.objects.filter(task_id=crm_job_id, status="RETRY").first(),
        interval=0.02,
        message="the result of the retry",
    )
    assert "503" in retry.result
    assert "TransientError" in retry.traceback
    wait_until(lambda: Job.objects.get(pk=crm_job_id).is_final, message="the CRM job to finish")

    job = Job.objects.get(pk=crm_job_id)
    assert (job.state, job.attempts) == ("succeeded", 2)
    assert list(TaskResult.objects.filter(task_id=crm_job_id).values_list("status")) == []


def test_a_crm_that_always_fails_ends_in_one_dead_letter(celery_worker, api_client, monkeypatch):
    monkeypatch.setattr(sync_crm_contact, "max_retries", 2)  # a small budget keeps the test short
    set_switch("crm", failure_rate=1.0)

    body = sign_up(api_client, avatar=False)
    crm_job_id = next(j["id"] for j in body["jobs"] if j["name"] == "jobs.sync_crm_contact")
    wait_until(
        lambda: DeadLetter.objects.filter(job_id=crm_job_id).exists(),
        message="the dead letter of the CRM job",
    )

    letter = DeadLetter.objects.get(job_id=crm_job_id)
    assert letter.attempts == 3
    assert "503" in letter.error
    assert "TransientError" in letter.traceback
    assert letter.first_failed_at <= letter.failed_at
    job = Job.objects.get(pk=crm_job_id)
    assert job.state == "dead"
    # Its failure is the job's last word, so the task results keep it, with the traceback.
    assert TaskResult.objects.get(task_id=crm_job_id).status == "FAILURE"
    assert ReceivedRequest.objects.filter(service="crm").count() == 3
    # The other signup jobs were not held back by the failing one.
    others = Customer.objects.get(pk=body["customer"]["id"]).jobs.exclude(
        name__in=["jobs.sync_crm_contact", "jobs.record_dead_letter"]
    )
    wait_until(lambda: not others.exclude(state="succeeded").exists(), message="the other jobs")
    assert DeadLetter.objects.count() == 1

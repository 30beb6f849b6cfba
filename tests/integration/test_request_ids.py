"""A request's id follows it into the jobs it caused, and onto every log line."""

import json
import logging
import os
import subprocess
import sys

import pytest

from jobs.log_context import ContextFilter
from jobs.models import Job
from stack.waiting import wait_until

SIGNUP = {"email": "traced@example.com", "name": "Traced", "password": "follow-the-id-1"}


@pytest.mark.integration
def test_the_request_id_follows_a_signup_into_its_jobs_and_their_logs(
    celery_worker, api_client, caplog
):
    caplog.handler.addFilter(ContextFilter())
    caplog.set_level(logging.INFO)

    response = api_client.post("/api/signup", SIGNUP, format="json", HTTP_X_REQUEST_ID="req-42")

    assert response["X-Request-ID"] == "req-42"
    welcome = next(j["id"] for j in response.json()["jobs"] if j["name"].endswith("welcome_email"))
    wait_until(lambda: Job.objects.get(pk=welcome).state == "succeeded", message="the email")
    assert set(Job.objects.values_list("request_id", flat=True)) == {"req-42"}
    [sent] = [r for r in caplog.records if r.name == "shop.emails" and "welcome" in r.getMessage()]
    assert (sent.request_id, sent.job_id) == ("req-42", welcome)


@pytest.mark.django_db
def test_an_unacceptable_request_id_is_replaced(api_client):
    response = api_client.get("/api/products", HTTP_X_REQUEST_ID="no spaces <allowed>")

    assert response["X-Request-ID"] != "no spaces <allowed>"
    assert len(response["X-Request-ID"]) == 32


def test_log_format_json_writes_one_json_object_a_line():
    done = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "import logging; logging.getLogger('shop.test').warning('hello %s', 'there')",
        ],
        env={**os.environ, "LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    [line] = [line for line in done.stderr.splitlines() if "hello" in line]
    record = json.loads(line)
    assert record["message"] == "hello there"
    assert record["level"] == "WARNING"
    assert record["logger"] == "shop.test"
    assert record["request_id"] == "-"

"""The dashboard's recent jobs show the business jobs; the job machinery's own housekeeping
(recording dead letters) only when asked for."""

import re

import pytest
from django.contrib.auth import get_user_model

from tests.factories import CustomerFactory, JobFactory


@pytest.fixture
def staff_client(client, db):
    client.force_login(
        get_user_model().objects.create_user(
            username="ops@example.com", password="x-ops-password-1", is_staff=True
        )
    )
    return client


def recent_job_names(page: str) -> list[str]:
    section = page.split('id="jobs"', 1)[1]
    return re.findall(r'<td><span title="[^"]+">([^<]+)</span></td>', section)


def test_recent_jobs_leave_housekeeping_out_unless_asked_for(staff_client):
    customer = CustomerFactory()
    for name, queue in [
        ("jobs.sync_crm_contact", "crm"),
        ("jobs.record_dead_letter", "dead_letter"),
        ("jobs.send_welcome_email", "critical"),
    ]:
        JobFactory(name=name, queue=queue, concerning=customer)

    default = recent_job_names(staff_client.get("/ops/").content.decode())
    everything = recent_job_names(staff_client.get("/ops/?housekeeping=1").content.decode())
    by_name = recent_job_names(
        staff_client.get("/ops/?name=jobs.record_dead_letter").content.decode()
    )

    assert default == ["send_welcome_email", "sync_crm_contact"]
    assert everything == ["send_welcome_email", "record_dead_letter", "sync_crm_contact"]
    assert by_name == ["record_dead_letter"]  # asked for by name: shown

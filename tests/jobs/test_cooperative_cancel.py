"""A running job declared `cancellable_while_running` may be cancelled: the cancel is recorded
and audited at once, and its run stops at its next progress report, ending the job
`cancelled` with the operator's reason. On a real worker, over the real broker."""

import time

import pytest
from django.contrib.auth import get_user_model

from jobs import dispatch, operations
from jobs.base import LedgerTask, job
from jobs.models import DeadLetter, Job, OperatorAction
from shop.tokens import issue_token

# What the body did after the cancel was asked: nothing, if it stopped where it should.
stopped_at: dict[str, int] = {}


@job("tests.count_slowly", queue="default", bind=True, cancellable_while_running=True)
def count_slowly(self: LedgerTask, *, steps: int) -> str:
    done = 0
    try:
        for done in range(1, steps + 1):
            time.sleep(0.1)
            self.report_progress(done=done, total=steps)
    except BaseException:
        stopped_at[str(self.request.id)] = done  # the body's clean-up runs, then it re-raises
        raise
    return "counted"


@job("tests.count_slowly_unstoppable", queue="default", bind=True)
def count_slowly_unstoppable(self: LedgerTask, *, steps: int) -> str:
    for done in range(1, steps + 1):
        time.sleep(0.1)
        self.report_progress(done=done, total=steps)
    return "counted"


@pytest.fixture
def staff(transactional_db):
    return get_user_model().objects.create_user(
        username="ops@example.com", email="ops@example.com", password="x-ops-1", is_staff=True
    )


def _wait(condition, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def _running_with_progress(job_id: str) -> Job:
    return _wait(
        lambda: (row := Job.objects.get(pk=job_id)).state == "running" and row.progress_done and row
    )


@pytest.mark.integration
def test_a_running_job_that_can_stop_is_cancelled_at_its_next_progress_report(
    celery_worker, staff, api_client
):
    job_id = str(dispatch.enqueue("tests.count_slowly", steps=200).pk)
    _running_with_progress(job_id)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(staff)}")

    response = api_client.post(
        f"/api/ops/jobs/{job_id}/cancel", {"reason": "wrong date range"}, format="json"
    )

    # Asked, not done: the job still runs until its run reaches a progress report.
    assert response.status_code == 202, response.content
    assert response.json()["stopping"] is True
    assert response.json()["job"]["state"] == "running"
    assert response.json()["outcome_reason"] == "wrong date range"
    again = api_client.post(f"/api/ops/jobs/{job_id}/cancel", {"reason": "x"}, format="json")
    assert again.status_code == 409
    assert "asked already" in again.json()["detail"]

    row = _wait(lambda: (r := Job.objects.get(pk=job_id)).is_final and r)
    assert (row.state, row.outcome_reason) == ("cancelled", "wrong date range")
    assert row.attempts == 1
    assert row.progress["done"] < 200  # it stopped, it did not count to the end
    assert stopped_at[job_id] == row.progress["done"] + 1  # at the report after the request
    assert not DeadLetter.objects.exists()
    [action] = OperatorAction.objects.all()
    assert (action.action, action.job_id, action.reason) == ("cancel", row.pk, "wrong date range")


@pytest.mark.integration
def test_other_running_jobs_are_still_refused(celery_worker, staff):
    job_id = str(dispatch.enqueue("tests.count_slowly_unstoppable", steps=30).pk)
    _running_with_progress(job_id)

    with pytest.raises(operations.Conflict, match="running"):
        operations.cancel(job_id, by=staff, reason="please stop")

    row = _wait(lambda: (r := Job.objects.get(pk=job_id)).is_final and r)
    assert row.state == "succeeded"
    assert row.cancel_requested_at is None
    assert not OperatorAction.objects.exists()

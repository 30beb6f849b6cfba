"""A job's body may end its job as `skipped` or `declined` (jobs.errors.Skip, Decline), and a
long job reports its progress to the ledger: on a real worker, over the real broker."""

import time

import pytest

from jobs import dispatch
from jobs.base import LedgerTask, job
from jobs.errors import Decline, Skip
from jobs.models import DeadLetter, Job


@job("tests.outcome_skip", queue="default")
def skip_it() -> None:
    raise Skip("the order was cancelled before the reminder was due")


@job("tests.outcome_decline", queue="default")
def decline_it() -> None:
    raise Decline("the card was declined (insufficient funds)")


@job("tests.outcome_progress", queue="default", bind=True)
def count_to_three(self: LedgerTask) -> str:
    for done in range(1, 4):
        assert self.report_progress(done=done, total=3)
    return "counted"


def _final(job_id: str, timeout: float = 15) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = Job.objects.get(pk=job_id)
        if row.is_final:
            return row
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {Job.objects.get(pk=job_id)}")


@pytest.mark.integration
def test_a_body_ends_its_job_as_skipped_or_declined_with_its_reason(celery_worker):
    skipped = _final(str(dispatch.enqueue("tests.outcome_skip").pk))
    declined = _final(str(dispatch.enqueue("tests.outcome_decline").pk))

    assert (skipped.state, skipped.outcome_reason) == (
        Job.State.SKIPPED,
        "the order was cancelled before the reminder was due",
    )
    assert (declined.state, declined.outcome_reason) == (
        Job.State.DECLINED,
        "the card was declined (insufficient funds)",
    )
    # Ends, not failures: run once, no retry, no dead letter, no error.
    assert skipped.attempts == declined.attempts == 1
    assert skipped.last_error == declined.last_error == ""
    assert not DeadLetter.objects.exists()


@pytest.mark.integration
def test_a_long_job_reports_its_progress_to_the_ledger(celery_worker):
    row = _final(str(dispatch.enqueue("tests.outcome_progress").pk))

    assert row.state == Job.State.SUCCEEDED
    assert row.progress == {"done": 3, "total": 3}


@pytest.mark.django_db
def test_progress_is_null_until_a_job_reports_it():
    row = dispatch.enqueue("tests.outcome_skip")
    assert Job.objects.get(pk=row.pk).progress is None

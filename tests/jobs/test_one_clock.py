"""One clock: leases, due times and lags are the database's, not each host's (jobs.clock).

A process's clock is skewed here by patching django.utils.timezone.now, which every module of
the project reads its host's time through; the database's clock is left alone. Rows are
recorded before the skew, as another host (with a true clock) would have recorded them.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import ledger, relay
from jobs.clock import DbNow, db_now
from jobs.models import Job

pytestmark = pytest.mark.django_db(transaction=True)

MINUTES = 5 * 60  # how far off the skewed host's clock is
LEASE = 30.0


@pytest.fixture
def skew(monkeypatch):
    """skew(seconds): this process's clock runs `seconds` ahead (negative: behind) from now."""
    real_now = timezone.now

    def set_skew(seconds: float) -> None:
        monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=seconds))

    return set_skew


def record(state: str = "queued", **fields) -> Job:
    return Job.objects.create(
        name="jobs.track_analytics_event",
        queue="bulk",
        kwargs={"event_id": "e", "name": "e", "properties": {}},
        state=state,
        **fields,
    )


def claim(job: Job, holder: str) -> ledger.Claim:
    return ledger.claim(
        str(job.pk),
        retries=0,
        epoch=job.epoch,
        holder=holder,
        lease_seconds=LEASE,
        max_lost_runs=3,
    )


def dead_run() -> Job:
    """A job whose run died: its lease ran out 10 s ago, by the database's clock."""
    job = record()
    assert claim(job, "host-a:1").outcome is ledger.Outcome.RUN
    Job.objects.filter(pk=job.pk).update(lease_until=DbNow(-10), published_at=DbNow(-60))
    return job


def test_a_worker_whose_clock_is_ahead_does_not_steal_a_live_run(skew):
    job = record()
    live = claim(job, "host-a:1")  # a worker with a true clock runs it, its lease renewed
    assert live.outcome is ledger.Outcome.RUN

    skew(+MINUTES)  # a second delivery reaches a worker whose clock is 5 minutes ahead
    assert claim(job, "host-b:1").outcome is ledger.Outcome.BUSY

    job.refresh_from_db()
    assert (job.attempts, job.lease_holder, job.lost_runs) == (1, "host-a:1", 0)


def test_a_relay_whose_clock_is_ahead_leaves_live_runs_and_future_jobs_alone(skew, empty_queues):
    job = record()
    assert claim(job, "host-a:1").outcome is ledger.Outcome.RUN
    Job.objects.filter(pk=job.pk).update(published_at=DbNow(-60))
    later = record("scheduled", eta=db_now() + timedelta(seconds=60))

    skew(+MINUTES)
    assert relay.relay() == 0
    assert empty_queues.llen("bulk") == 0
    later.refresh_from_db()
    assert later.state == "scheduled"


def test_a_relay_whose_clock_is_behind_does_not_leave_a_dead_run_sitting(skew, empty_queues):
    job = dead_run()

    skew(-MINUTES)
    assert relay.relay() == 1
    job.refresh_from_db()
    assert job.stalled_reason == "worker_lost"
    assert empty_queues.llen("bulk") == 1
    assert relay.relay() == 0  # published once per lease, by the same clock


def test_a_worker_whose_clock_is_behind_takes_over_a_dead_run(skew):
    job = dead_run()

    skew(-MINUTES)
    rescue = claim(job, "host-b:1")
    assert (rescue.outcome, rescue.attempt) == (ledger.Outcome.RUN, 2)
    job.refresh_from_db()
    assert (job.lease_holder, job.lost_runs) == ("host-b:1", 1)
    # Its lease is the database's now plus LEASE, not its host's, 5 minutes behind.
    assert job.lease_until > db_now() + timedelta(seconds=LEASE - 5)


def test_a_due_job_is_published_on_time_by_a_relay_whose_clock_is_behind(skew, empty_queues):
    due = record("scheduled", eta=db_now() - timedelta(seconds=1))

    skew(-MINUTES)
    assert relay.relay() == 1
    due.refresh_from_db()
    assert due.state == "queued"


def test_the_database_clock_is_written_as_django_writes_datetimes():
    """On SQLite a datetime is text: what DbNow writes must compare equal to the value read
    back (the relay's claim compares published_at and lease_until for equality)."""
    job = record()
    Job.objects.filter(pk=job.pk).update(published_at=DbNow(), lease_until=DbNow(LEASE))
    job.refresh_from_db()
    assert Job.objects.filter(
        pk=job.pk, published_at=job.published_at, lease_until=job.lease_until
    ).exists()
    assert job.lease_until - job.published_at == timedelta(seconds=LEASE)
    assert abs((db_now() - job.published_at).total_seconds()) < 5
    assert Job.objects.filter(pk=job.pk, published_at__lte=DbNow()).exists()
    assert not Job.objects.filter(pk=job.pk, lease_until__lte=DbNow()).exists()

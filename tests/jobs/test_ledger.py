"""The ledger's fences: which delivery of a job may run, and whose writes count."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction

from jobs import dead_letters, ledger, operations
from jobs.models import Job

pytestmark = pytest.mark.django_db
Outcome = ledger.Outcome


def claim(job, *, retries=0, epoch=0, lease=60, holder="w1@host:100"):
    return ledger.claim(
        str(job.pk),
        retries=retries,
        epoch=epoch,
        holder=holder,
        lease_seconds=lease,
        max_lost_runs=3,
    )


@pytest.fixture
def job():
    return Job.objects.create(name="jobs.sync_crm_contact", queue="bulk")


def test_a_second_delivery_is_turned_away_while_the_first_holds_the_lease(job):
    first, second = claim(job), claim(job, holder="w2@host:200")

    assert (first.outcome, first.attempt) == (Outcome.RUN, 1)
    assert second.outcome is Outcome.BUSY
    job.refresh_from_db()
    assert (job.attempts, job.lease_holder) == (1, "w1@host:100")


def test_a_retry_sent_without_being_recorded_takes_over_and_fences_out_its_sender(job):
    sender = claim(job, retries=0)  # sent retry 1, but the database was away to record it

    taker = claim(job, retries=1)

    assert (taker.outcome, taker.attempt) == (Outcome.RUN, 2)
    assert ledger.mark_dead(str(job.pk), attempt=sender.attempt, error="late") is None
    assert claim(job, retries=0).outcome is Outcome.STALE  # the sender's own message again


def test_a_retry_runs_once_its_run_recorded_it(job):
    first = claim(job)
    assert ledger.mark_retrying(
        str(job.pk), attempt=first.attempt, error="503", next_attempt_at=None
    )

    assert claim(job, retries=0).outcome is Outcome.STALE  # the old message again
    assert claim(job, retries=1).outcome is Outcome.RUN


def test_a_run_taken_over_after_its_lease_cannot_write_any_more(job):
    first = claim(job, lease=-1)  # its lease is over at once: as if its worker died
    second = claim(job)

    assert (second.outcome, second.attempt) == (Outcome.RUN, 2)
    assert not ledger.mark_retrying(
        str(job.pk), attempt=first.attempt, error="late", next_attempt_at=None
    )
    assert ledger.mark_dead(str(job.pk), attempt=first.attempt, error="late") is None
    assert not ledger.mark_succeeded(str(job.pk), attempt=first.attempt)
    assert ledger.mark_succeeded(str(job.pk), attempt=second.attempt)
    job.refresh_from_db()
    assert (job.state, job.lost_runs, job.last_error) == ("succeeded", 1, "")


def test_after_a_requeue_every_older_message_is_stale(job):
    run = claim(job, retries=2)
    ledger.mark_dead(str(job.pk), attempt=run.attempt, error="budget spent")
    letter = dead_letters.record(job_id=str(job.pk), error="budget spent", traceback="")
    operations.requeue(letter, by=get_user_model().objects.create_user("ops", is_staff=True))

    assert claim(job, retries=2, epoch=0).outcome is Outcome.STALE
    assert claim(job, retries=5, epoch=0).outcome is Outcome.STALE
    again = claim(job, retries=0, epoch=1)
    assert again.outcome is Outcome.RUN
    job.refresh_from_db()
    assert (job.epoch, job.retries, job.lost_runs) == (1, 0, 0)


def test_only_a_dead_job_can_be_requeued(job):
    run = claim(job)
    ledger.mark_dead(str(job.pk), attempt=run.attempt, error="x")
    letter = dead_letters.record(job_id=str(job.pk), error="x", traceback="")
    Job.objects.filter(pk=job.pk).update(state=Job.State.RUNNING)  # someone got there first

    with pytest.raises(operations.NotOpen):
        operations.requeue(letter, by=get_user_model().objects.create_user("o", is_staff=True))
    letter.refresh_from_db()
    assert letter.status == "open"  # nothing half-done


def test_a_job_that_is_gone_is_not_run():
    outcome = ledger.claim(
        "00000000-0000-0000-0000-000000000000",
        retries=0,
        epoch=0,
        holder="w1@host:100",
        lease_seconds=60,
        max_lost_runs=3,
    )

    assert outcome.outcome is Outcome.STALE


def test_a_run_handed_back_is_taken_again_as_a_first_run_would_be_not_as_a_lost_one(job):
    run = claim(job)

    assert ledger.hand_back(str(job.pk), attempt=run.attempt)

    job.refresh_from_db()
    assert (job.state, job.lease_until, job.stalled_reason) == ("queued", None, "handed_back")
    again = claim(job, holder="w2@host:200")  # the same message, put back on the queue
    assert (again.outcome, again.attempt) == (Outcome.RUN, 2)
    job.refresh_from_db()
    assert (job.lost_runs, job.stalled_reason) == (0, "")
    assert not ledger.mark_succeeded(str(job.pk), attempt=run.attempt)  # fenced out


def test_a_stopping_worker_hands_back_only_what_its_own_processes_hold():
    mine = [Job.objects.create(name="jobs.sync_crm_contact", queue="crm") for _ in range(2)]
    theirs = Job.objects.create(name="jobs.sync_crm_contact", queue="crm")
    claim(mine[0], holder="io@host:100")  # the main process of a thread pool
    claim(mine[1], holder="io@host:101")  # a child of a prefork pool
    claim(theirs, holder="io@host2:100")  # another worker, its name starting alike

    assert ledger.hand_back_held_by(node="io@host") == 2

    states = dict(Job.objects.values_list("pk", "state"))
    assert [states[j.pk] for j in mine] == ["queued", "queued"]
    assert states[theirs.pk] == "running"


def test_a_run_that_finishes_just_after_its_hand_back_records_its_success(job):
    run = claim(job)
    ledger.hand_back(str(job.pk), attempt=run.attempt)

    assert ledger.mark_succeeded(str(job.pk), attempt=run.attempt)

    job.refresh_from_db()
    assert (job.state, job.stalled_reason) == ("succeeded", "")
    assert claim(job, holder="w2@host:200").outcome is Outcome.FINISHED  # its message, put back


# --- On PostgreSQL, the statements every job runs are prepared --------------------------------

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's"
)


def prepared_on_this_connection() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [statement for (statement,) in cursor.fetchall()]


def run_through(job) -> None:
    run = claim(job)
    assert run.outcome is Outcome.RUN
    assert ledger.mark_succeeded(str(job.pk), attempt=run.attempt)


@pytest.fixture
def none_prepared_yet():
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # psycopg forgets its own list of them on this, too


@on_postgresql
def test_the_claim_and_the_finish_are_planned_once_per_connection(none_prepared_yet):
    jobs = [Job.objects.create(name="jobs.sync_crm_contact", queue="bulk") for _ in range(3)]

    for job in jobs:
        run_through(job)

    prepared = prepared_on_this_connection()
    assert [s for s in prepared if "RETURNING attempts" in s] != [], prepared  # the claim
    assert [s for s in prepared if "SET state = $1, outcome_reason" in s] != [], prepared
    assert len(prepared) == 2, prepared  # each once, not once a job
    assert set(Job.objects.values_list("state", flat=True)) == {"succeeded"}


@on_postgresql
def test_a_rolled_back_transaction_leaves_the_next_claim_working(job, none_prepared_yet):
    other = Job.objects.create(name="jobs.sync_crm_contact", queue="bulk")

    def run_then_roll_back():
        with transaction.atomic():
            run_through(job)  # prepared inside the transaction that is rolled back
            raise RuntimeError

    with pytest.raises(RuntimeError):
        run_then_roll_back()

    run_through(job)
    run_through(other)

    assert set(Job.objects.values_list("state", flat=True)) == {"succeeded"}


@on_postgresql
def test_behind_a_pooler_that_drops_them_nothing_is_prepared(job, none_prepared_yet, monkeypatch):
    # What DATABASE_PREPARED_STATEMENTS=false gives the connection
    # (tests/config/test_database_settings.py).
    monkeypatch.setattr(connection.connection, "prepare_threshold", None)

    run_through(job)

    assert prepared_on_this_connection() == []
    job.refresh_from_db()
    assert job.state == "succeeded"


@on_postgresql
@pytest.mark.django_db(transaction=True)  # a worker's claim and finish run in autocommit
def test_a_statement_gone_from_the_session_is_run_unprepared_and_said(job, caplog):
    # As behind a transaction pooler that hands the connection another server session.
    first, second = job, Job.objects.create(name="jobs.sync_crm_contact", queue="bulk")
    run_through(first)
    connection.connection.pgconn.exec_(b"DEALLOCATE ALL")  # unseen by psycopg's own list

    run_through(second)

    second.refresh_from_db()
    assert second.state == "succeeded"
    assert "DATABASE_PREPARED_STATEMENTS=false" in caplog.text
    assert prepared_on_this_connection() == []  # nothing prepared on it any more

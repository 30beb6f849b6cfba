"""The ledger's figures stay flat as it grows: the counts by state that the dashboard, the
ops API and /metrics show are kept by the database as jobs move (jobs.models.JobCount) and
agree with a COUNT(*) of the table through every path that moves a job; the stats read
indexes, never the whole table (tests/jobs/test_query_plans.py); and they ask no worker
anything through the broker."""

from datetime import timedelta

import pytest
from celery.app.control import Control
from django.contrib.auth import get_user_model
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs import counts, dead_letters, dispatch, ledger, operations, relay, retention
from jobs.models import Job, JobCount
from stack.waiting import wait_until
from tests.jobs import metrics_tasks

pytestmark = pytest.mark.django_db
State = Job.State
Outcome = ledger.Outcome


def oracle() -> dict[str, int]:
    """What the counts must say: the table counted row by row."""
    counted = dict(Job.objects.order_by().values_list("state").annotate(n=Count("*")))
    return {state: counted.get(state, 0) for state in State.values}


def assert_counts_right(step: str) -> None:
    assert operations.job_counts() == oracle(), f"after {step}"


def new_job(**fields) -> Job:
    return Job.objects.create(name="jobs.sync_crm_contact", queue="bulk", **fields)


def claim(job: Job, *, retries: int = 0, epoch: int = 0, lease: float = 60) -> ledger.Claim:
    return ledger.claim(
        str(job.pk),
        retries=retries,
        epoch=epoch,
        holder="w1@host:100",
        lease_seconds=lease,
        max_lost_runs=2,
    )


@pytest.fixture
def staff():
    return get_user_model().objects.create_user("ops", is_staff=True)


def test_the_counts_agree_with_the_table_through_every_state_change(staff):
    assert_counts_right("nothing")
    # Recorded: queued, and scheduled; a scheduled one falls due and the relay queues it.
    succeeding, retried, ended, declined = (new_job() for _ in range(4))
    due = new_job(state=State.SCHEDULED, eta=timezone.now() - timedelta(seconds=1))
    assert_counts_right("recording")
    assert relay.publish_due() >= 1
    due.refresh_from_db()
    assert due.state == State.QUEUED
    assert_counts_right("a due job queued")

    run = claim(succeeding)
    assert run.outcome is Outcome.RUN
    assert_counts_right("a claim")
    assert ledger.mark_succeeded(str(succeeding.pk), attempt=run.attempt)
    assert_counts_right("a success")

    run = claim(retried)
    assert ledger.mark_retrying(
        str(retried.pk), attempt=run.attempt, error="503", next_attempt_at=None
    )
    assert_counts_right("a retry")
    run = claim(retried, retries=1)
    assert ledger.mark_dead(str(retried.pk), attempt=run.attempt, error="503 again")
    assert_counts_right("a dead job")
    letter = dead_letters.record(job_id=str(retried.pk), error="503 again", traceback="")
    operations.requeue(letter, by=staff)
    assert_counts_right("a requeue of the dead job")

    run = claim(ended)
    assert ledger.mark_ended(str(ended.pk), attempt=run.attempt, state=State.SKIPPED, reason="no")
    run = claim(declined)
    assert ledger.mark_ended(
        str(declined.pk), attempt=run.attempt, state=State.DECLINED, reason="no"
    )
    assert_counts_right("skipped and declined")

    operations.cancel(str(due.pk), by=staff, reason="not wanted")
    assert_counts_right("a cancel")

    # A run handed back by its stopping worker; then one whose workers keep dying, given up.
    held = new_job()
    claim(held)
    assert ledger.hand_back_held_by(node="w1@host") == 1
    assert_counts_right("a hand back")
    lost = new_job()
    claim(lost, lease=-1)
    claim(lost, lease=-1)  # its second run's worker dies too
    assert claim(lost).outcome is Outcome.GAVE_UP
    assert_counts_right("a job given up after lost runs")

    # Old succeeded jobs purged, a batch at a time; the rest stays.
    Job.objects.bulk_create(
        Job(name="jobs.sync_crm_contact", queue="bulk", state=State.SUCCEEDED, finished_at=None)
        for _ in range(5)
    )
    assert_counts_right("rows written many at a time")
    long_ago = timezone.now() - timedelta(days=365)
    Job.objects.filter(state=State.SUCCEEDED).update(finished_at=long_ago)
    assert retention.purge_old_records()["jobs"] == 6
    assert_counts_right("a purge")
    assert operations.job_counts()[State.SUCCEEDED] == 0
    assert operations.job_counts()[State.DEAD] == 1  # the one given up; its letter stays

    Job.objects.all().delete()
    assert_counts_right("deleting everything")


def test_the_count_triggers_are_on_the_ledger_after_every_migration():
    """A later migration that makes SQLite rebuild jobs_job (most field changes do: a new table,
    the rows copied, the old one dropped) drops its triggers with it: it must install them
    again (jobs/migrations/0011_flat_counts.py has the SQL)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'jobs_job'"
            )
            expected = {
                "jobs_count_inserted",
                "jobs_count_deleted",
                "jobs_count_entered",
                "jobs_count_left",
            }
        else:
            cursor.execute(
                "SELECT tgname FROM pg_trigger"
                " WHERE tgrelid = 'jobs_job'::regclass AND NOT tgisinternal"
            )
            expected = {"jobs_count_inserted", "jobs_count_deleted", "jobs_count_state_change"}
        assert {name for (name,) in cursor.fetchall()} >= expected


def test_triggers_a_later_migration_dropped_come_back_after_it_with_the_counts_taken_again():
    new_job(state=State.SUCCEEDED)
    counts.uninstall(connection)  # as SQLite's rebuild of jobs_job for an altered field does
    new_job(state=State.SUCCEEDED)
    new_job(state=State.DEAD)
    assert operations.job_counts() != oracle()  # unkept while the triggers were gone

    emit_post_migrate_signal(verbosity=0, interactive=False, db=connection.alias)

    assert counts.installed(connection) == counts.TRIGGERS[connection.vendor]
    assert_counts_right("migrate put the triggers back")
    new_job(state=State.CANCELLED)
    assert_counts_right("a job after that")


def test_the_counts_kept_are_those_of_the_final_states():
    """A new final state needs the triggers told of it (a migration that replaces them)."""
    for state in Job.FINAL_STATES:
        new_job(state=state)
    kept = dict(JobCount.objects.values_list("state", "n"))
    assert kept == dict.fromkeys(Job.FINAL_STATES, 1)


def test_the_stats_ask_no_worker_and_cost_the_same_queries_however_many_jobs(monkeypatch):
    broadcasts: list[str] = []
    broadcast = Control.broadcast

    def counted(self, command, *args, **kwargs):
        broadcasts.append(command)
        return broadcast(self, command, *args, **kwargs)

    monkeypatch.setattr(Control, "broadcast", counted)
    with CaptureQueriesContext(connection) as few:
        small = operations.stats()
    Job.objects.bulk_create(
        Job(name="jobs.sync_crm_contact", queue="bulk", state=state, finished_at=timezone.now())
        for state in (State.SUCCEEDED, State.DEAD, State.QUEUED) * 50
    )
    with CaptureQueriesContext(connection) as many:
        large = operations.stats()

    assert broadcasts == []  # no ping, no inspect: workers are counted from their heartbeats
    assert len(many.captured_queries) == len(few.captured_queries)
    assert (large.jobs[State.SUCCEEDED], large.jobs[State.QUEUED]) == (50, 50)
    assert all(type(count) is int for count in large.jobs.values())  # as the API documents them
    assert (large.finished_last_minute, large.failed_last_minute) == (100, 50)
    assert small.workers == large.workers == 0


def test_emptying_the_counts_before_the_jobs_leaves_none_below_zero():
    """Django's flush (between transactional tests) empties every table in no set order."""
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's flush truncates the tables: no trigger fires")
    for state in Job.FINAL_STATES:
        new_job(state=state)
    JobCount.objects.all().delete()
    Job.objects.all().delete()
    assert_counts_right("emptying both tables")
    new_job(state=State.SUCCEEDED)
    assert_counts_right("a job after that")


@pytest.mark.integration
def test_the_counts_agree_with_the_table_once_real_workers_ran_the_jobs(celery_worker):
    """Success, a retry then success, a failure for good (and the dead letter's own job): the
    claims and ends a worker writes, counted by the database as it writes them."""
    for task in (metrics_tasks.succeed, metrics_tasks.fail_once, metrics_tasks.fail_for_good):
        dispatch.enqueue(task.name)

    def settled() -> bool:
        return not Job.objects.exclude(state__in=Job.FINAL_STATES).exists() and (
            Job.objects.count() == 4  # with jobs.record_dead_letter
        )

    wait_until(settled, timeout=60, message="every job to end")
    assert_counts_right("real runs")
    counts = operations.stats().jobs
    assert (counts[State.SUCCEEDED], counts[State.DEAD]) == (3, 1)


def test_a_run_that_ended_skipped_or_declined_counts_as_finished_in_the_last_minute():
    """Before the business outcomes, a skip or a decline was a success and counted in the
    throughput; a run that ended so is still a run that finished. A cancel is not a run."""
    for state in (State.SUCCEEDED, State.SKIPPED, State.DECLINED, State.DEAD, State.CANCELLED):
        new_job(state=state, finished_at=timezone.now())

    stats = operations.stats()

    assert (stats.finished_last_minute, stats.failed_last_minute) == (4, 1)

"""The ledger's INSERT (jobs.dispatch._insert_all) writes what Django's bulk_create writes,
column by column, for every kind of job a service records; it is only cheaper."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet, Value
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs import log_context
from jobs.dispatch import _insert_all, enqueue_all, new_job
from jobs.models import Job

pytestmark = pytest.mark.django_db


def some_jobs(subject) -> list[Job]:
    """One of each shape: due now, scheduled, about a subject, kwargs of every JSON kind."""
    token = log_context.request_id.set("req-7f3a")
    try:
        return [
            new_job("jobs.send_welcome_email", concerning=subject, customer_id=subject.pk),
            new_job(
                "jobs.track_analytics_event",
                event_id="signed_up:é—ü ☃",
                name="signed_up",
                properties={"nested": [1, 2.5, None, True, {"k": "v"}], "empty": {}},
            ),
            new_job(
                "jobs.send_review_reminder",
                concerning=subject,
                eta=timezone.now() + timedelta(days=3),
                order_id=12,
            ),
        ]
    finally:
        log_context.request_id.reset(token)


def rows(jobs: list[Job]) -> list[dict]:
    """The jobs' rows as the database holds them, every column, in the list's order."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT * FROM {Job._meta.db_table} "  # noqa: S608 - a name, and placeholders
            f"WHERE id IN ({', '.join(['%s'] * len(jobs))})",
            [Job._meta.pk.get_db_prep_value(job.pk, connection) for job in jobs],
        )
        columns = [column[0] for column in cursor.description]
        found = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    by_id = {str(row["id"]).replace("-", ""): row for row in found}
    return [by_id[job.pk.hex] for job in jobs]


def no_bulk_create(monkeypatch) -> None:
    """bulk_create refused: what is written is written by _insert_all's own INSERT."""

    def refused(*args, **kwargs):
        raise AssertionError("fell back to bulk_create")

    monkeypatch.setattr(QuerySet, "bulk_create", refused)


def test_the_rows_are_those_bulk_create_writes_column_by_column(monkeypatch):
    subject = get_user_model().objects.create(username="subject@example.com")
    ours, django_s = some_jobs(subject), some_jobs(subject)
    Job.objects.bulk_create(django_s)
    no_bulk_create(monkeypatch)
    _insert_all(ours)

    for mine, theirs in zip(rows(ours), rows(django_s), strict=True):
        assert set(mine) == set(theirs) == {f.column for f in Job._meta.concrete_fields}
        for column in mine.keys() - {"id", "created_at", "eta"}:
            assert mine[column] == theirs[column], column
        # Times differ by the moments the two were written; their form does not.
        assert type(mine["created_at"]) is type(theirs["created_at"])
        assert (mine["eta"] is None) == (theirs["eta"] is None)
    # The instances are saved ones, as bulk_create leaves them, and read back the same.
    for job in ours:
        assert not job._state.adding
        assert job._state.db == "default"
        again = Job.objects.get(pk=job.pk)
        assert (again.name, again.kwargs, again.state, again.concerning) == (
            job.name,
            job.kwargs,
            job.state,
            job.concerning,
        )
        assert again.created_at == job.created_at
        assert again.eta == job.eta
    assert [j.state for j in ours] == [Job.State.QUEUED, Job.State.QUEUED, Job.State.SCHEDULED]


def test_jobs_recorded_together_are_in_the_order_they_were_given():
    """created_at is set row by row, as bulk_create's pre_save does: a subject's timeline
    (oldest first) lists an order's jobs in the order the service recorded them."""
    subject = get_user_model().objects.create(username="subject@example.com")
    jobs = some_jobs(subject)
    _insert_all(jobs)
    assert [j.created_at for j in jobs] == sorted(j.created_at for j in jobs)
    assert list(Job.objects.concerning(subject)) == [jobs[0], jobs[2]]


def test_a_job_holding_an_expression_is_written_the_orm_s_way():
    """A Job built without new_job leaves its db_default columns as expressions."""
    jobs = [
        Job(name="jobs.sync_crm_contact", queue="bulk"),
        Job(name="jobs.sync_crm_contact", queue="bulk", outcome_reason=Value("by hand")),
    ]
    _insert_all(jobs)
    written = {job.pk: job for job in Job.objects.all()}
    assert written[jobs[0].pk].lease_holder == ""
    assert written[jobs[0].pk].stalled_reason == ""
    assert written[jobs[1].pk].outcome_reason == "by hand"


@pytest.mark.django_db(transaction=True)
def test_many_jobs_go_in_batches_the_database_accepts_and_all_or_none_are_written(monkeypatch):
    no_bulk_create(monkeypatch)
    jobs = [new_job("jobs.sync_crm_contact", customer_id=n) for n in range(250)]
    with CaptureQueriesContext(connection) as ran:
        _insert_all(jobs)
    inserts = [q for q in ran.captured_queries if q["sql"].startswith("INSERT")]
    per_batch = max(connection.ops.bulk_batch_size(list(Job._meta.concrete_fields), jobs), 1)
    assert len(inserts) == -(-250 // per_batch)
    assert Job.objects.count() == 250

    # A failure in a later batch takes the earlier ones back with it (a duplicate id), with
    # no transaction of the caller's around it: _insert_all's own.
    more = [new_job("jobs.sync_crm_contact", customer_id=n) for n in range(2 * per_batch)]
    more[-1].pk = jobs[0].pk
    with pytest.raises(IntegrityError):
        _insert_all(more)
    assert Job.objects.count() == 250


def test_a_job_about_an_unsaved_object_is_refused_and_one_without_an_id_gets_one():
    with pytest.raises(ValueError, match="not saved"):
        new_job("jobs.send_welcome_email", concerning=get_user_model()(username="x"))
    job = new_job("jobs.sync_crm_contact", customer_id=1)
    job.pk = None
    _insert_all([job])
    assert job.pk is not None
    assert Job.objects.get().pk == job.pk


def test_an_order_s_jobs_are_one_insert_in_its_transaction(monkeypatch):
    no_bulk_create(monkeypatch)
    subject = get_user_model().objects.create(username="subject@example.com")
    with CaptureQueriesContext(connection) as ran, transaction.atomic():
        enqueue_all(some_jobs(subject))
    statements = [q["sql"].split()[0] for q in ran.captured_queries]
    assert statements.count("INSERT") == 1


def test_recording_no_jobs_records_nothing_and_raises_nothing():
    """A service may have nothing to record (an event no webhook endpoint wants): on
    PostgreSQL the batch size of no rows is 0, which must not be a step of zero."""
    with CaptureQueriesContext(connection) as ran, transaction.atomic():
        assert enqueue_all([]) == []
    assert not [q for q in ran.captured_queries if q["sql"].startswith("INSERT")]

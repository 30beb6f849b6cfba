from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_results.models import TaskResult

from jobs import retention, schedules
from jobs.dispatch import enqueue, publisher
from jobs.models import DeadLetter, Job, ScheduleRun
from stack.waiting import wait_until
from tests.factories import CustomerFactory


@pytest.mark.django_db
def test_seeding_schedules_keeps_what_operators_edited_unless_reset():
    call_command("seed_schedules")
    assert set(PeriodicTask.objects.values_list("task", flat=True)) == {
        "jobs.relay_unpublished_jobs",
        "jobs.purge_old_records",
        "jobs.schedule_weekly_sales_report",
    }
    # The relay process sweeps every second; beat's backstop of it is minutes apart.
    backstop = PeriodicTask.objects.get(task="jobs.relay_unpublished_jobs")
    assert (backstop.interval.every, backstop.interval.period) == (300, IntervalSchedule.SECONDS)

    faster, _ = IntervalSchedule.objects.get_or_create(every=60, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.filter(pk=backstop.pk).update(interval=faster)  # an edit in the admin
    assert schedules.seed() == []
    assert PeriodicTask.objects.get(pk=backstop.pk).interval.every == 60

    schedules.seed(reset=True)
    assert PeriodicTask.objects.get(pk=backstop.pk).interval.every == 300


def seeded_by_the_previous_release(name: str, task: str, every: int) -> PeriodicTask:
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=every, period=IntervalSchedule.SECONDS
    )
    return PeriodicTask.objects.create(name=name, task=task, interval=interval)


@pytest.mark.django_db
def test_seeding_moves_an_unedited_schedule_of_the_previous_release_to_the_rare_backstop():
    """The previous release seeded the relay's backstop every 10 s and due jobs every 5 s: a
    database deployed with it gets the new schedules from `seed_schedules` (run on deploy),
    unless an operator had changed them."""
    relay_sweep = "outbox relay sweep (backstop of relay_outbox)"
    due_jobs = "publish due jobs (review reminders)"
    seeded_by_the_previous_release(relay_sweep, "jobs.relay_unpublished_jobs", 10)
    seeded_by_the_previous_release(due_jobs, "jobs.publish_due_jobs", 5)

    call_command("seed_schedules")

    assert PeriodicTask.objects.get(name=relay_sweep).interval.every == 300
    assert not PeriodicTask.objects.filter(task="jobs.publish_due_jobs").exists()
    assert schedules.seed() == []  # once moved, seeding again changes nothing


@pytest.mark.django_db
def test_seeding_keeps_a_previous_release_schedule_that_an_operator_edited():
    relay_sweep = "outbox relay sweep (backstop of relay_outbox)"
    due_jobs = "publish due jobs (review reminders)"
    seeded_by_the_previous_release(relay_sweep, "jobs.relay_unpublished_jobs", 30)
    seeded_by_the_previous_release(due_jobs, "jobs.publish_due_jobs", 20)

    written = schedules.seed()

    assert relay_sweep not in written
    assert due_jobs not in written
    assert PeriodicTask.objects.get(name=relay_sweep).interval.every == 30
    assert PeriodicTask.objects.get(name=due_jobs).interval.every == 20
    schedules.seed(reset=True)  # the project's schedules, as they are now
    assert PeriodicTask.objects.get(name=relay_sweep).interval.every == 300
    assert not PeriodicTask.objects.filter(name=due_jobs).exists()


@pytest.mark.django_db
def test_purge_deletes_old_finished_rows_in_batches_and_keeps_open_dead_letters(monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 100)
    long_ago = timezone.now() - timedelta(days=40)
    Job.objects.bulk_create(
        Job(name="jobs.sync_crm_contact", queue="bulk", state="succeeded", finished_at=long_ago)
        for _ in range(250)
    )
    recent = Job.objects.create(
        name="x", queue="bulk", state="succeeded", finished_at=timezone.now()
    )
    kept_dead = Job.objects.create(name="x", queue="bulk", state="dead", finished_at=long_ago)
    DeadLetter.objects.create(
        job=kept_dead, error="e", attempts=1, first_failed_at=long_ago, failed_at=long_ago
    )
    TaskResult.objects.create(task_id="old", status="SUCCESS")
    TaskResult.objects.filter(task_id="old").update(date_done=long_ago)
    TaskResult.objects.create(task_id="new", status="SUCCESS")
    # Beat's claims of its runs (jobs.schedules.claim_run): a few a day, purged alike.
    ScheduleRun.objects.create(name="old", due_at=long_ago, sent_at=long_ago)
    ScheduleRun.objects.create(name="new", due_at=timezone.now(), sent_at=timezone.now())

    assert retention.purge_old_records() == {"jobs": 250, "task_results": 1, "schedule_runs": 1}
    assert list(ScheduleRun.objects.values_list("name", flat=True)) == ["new"]
    assert set(Job.objects.values_list("pk", flat=True)) == {recent.pk, kept_dead.pk}
    assert list(TaskResult.objects.values_list("task_id", flat=True)) == ["new"]


@pytest.mark.django_db(transaction=True)
def test_metrics_need_the_token_and_report_depth_lag_and_states(client, settings, empty_queues):
    customer = CustomerFactory()
    with transaction.atomic():
        for _ in range(3):
            enqueue("jobs.sync_crm_contact", concerning=customer, customer_id=customer.pk)
    assert publisher.flush()  # sent from the publisher's thread: wait for it, not race it

    assert client.get("/metrics").status_code == 403  # no token set, not in debug mode
    settings.METRICS_TOKEN = "scrape-me"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me")

    assert response.status_code == 200
    text = response.content.decode()
    assert 'shop_jobs_queue_depth{queue="crm"} 3.0' in text
    assert 'shop_jobs_queue_lag_seconds{queue="crm"}' in text
    assert 'shop_jobs_jobs{state="queued"} 3.0' in text
    assert "shop_jobs_dead_letters_open 0.0" in text


@pytest.mark.integration
def test_the_weekly_sales_report_is_written_and_mailed_to_staff_once(celery_worker, mailbox):
    from datetime import date

    from django.contrib.auth import get_user_model
    from django.core.files.storage import default_storage

    from config.celery import app
    from shop import reports
    from shop.models import Order, OrderLine, Product

    get_user_model().objects.create_user(username="boss", email="boss@example.com", is_staff=True)
    product = Product.objects.create(sku="MUG-001", name="Mug", price="14.00", stock=5)
    week = reports.last_week()
    in_last_week = timezone.make_aware(
        timezone.datetime.combine(
            date.fromisocalendar(int(week[:4]), int(week[6:]), 3), timezone.datetime.min.time()
        )
    )
    for status in ("paid", "paid", "payment_failed"):
        order = Order.objects.create(customer=CustomerFactory(), status=status, total="28.00")
        Order.objects.filter(pk=order.pk).update(created_at=in_last_week)
        OrderLine.objects.create(order=order, product=product, quantity=2, unit_price="14.00")

    app.send_task("jobs.schedule_weekly_sales_report", queue="default")  # what beat does
    wait_until(
        lambda: Job.objects.filter(
            name="jobs.send_weekly_sales_report", state="succeeded"
        ).exists(),
        message="the report",
    )
    with default_storage.open(f"reports/sales-{week}.csv") as report:
        assert report.read().decode().splitlines() == [
            "sku,product,quantity,revenue,currency",
            "MUG-001,Mug,4,56.00,EUR",
        ]
    [sent] = [m for m in mailbox() if m.subject == f"Sales report {week}"]
    assert sent.to == "boss@example.com"
    assert reports.send_weekly_sales_report(week=week) is None  # keyed: not twice


@pytest.mark.django_db
def test_purge_deletes_old_skipped_and_declined_jobs_as_it_did_when_they_were_succeeded():
    """A skip or a decline is a run that ended well (before the business states they were
    `succeeded`): every order of a customer without a mobile number leaves a skipped text
    message, every declined card a declined charge. Kept for good, the ledger would grow
    without bound."""
    long_ago = timezone.now() - timedelta(days=40)
    for state in ("skipped", "declined", "succeeded"):
        Job.objects.bulk_create(
            Job(
                name="jobs.send_shipping_notification",
                queue="default",
                state=state,
                outcome_reason="why",
                finished_at=long_ago,
            )
            for _ in range(3)
        )
    kept_dead = Job.objects.create(name="x", queue="bulk", state="dead", finished_at=long_ago)

    assert retention.purge_old_records()["jobs"] == 9
    assert list(Job.objects.values_list("pk", flat=True)) == [kept_dead.pk]


def test_two_beats_whose_clocks_differ_name_a_run_alike_and_only_one_sends_it(db):
    """The weekly report's crontab (Mondays 06:00) and the backstop's interval: a beat that
    ticks minutes early or late (its host clock off) names the same due time, and the second
    claim of a run is refused (jobs.schedules.claim_run)."""
    from datetime import UTC, datetime

    from celery.schedules import crontab, schedule

    weekly = crontab(minute="0", hour="6", day_of_week="1")
    monday_six = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    for off in (-25, -3, 0, 0.5, 4, 25):  # minutes
        when = monday_six + timedelta(minutes=off)
        assert schedules.due_time(weekly, now=when) == monday_six, off
    hourly = crontab(minute="17")
    at = datetime(2026, 12, 7, 9, 17, tzinfo=UTC)
    assert schedules.due_time(hourly, now=at - timedelta(minutes=2)) == at
    assert schedules.due_time(hourly, now=at + timedelta(minutes=2)) == at
    every_300 = schedule(timedelta(seconds=300))
    slot = datetime(2026, 12, 7, 9, 15, tzinfo=UTC)
    assert schedules.due_time(every_300, now=slot + timedelta(seconds=10)) == slot
    assert schedules.due_time(every_300, now=slot + timedelta(seconds=290)) == slot

    assert schedules.claim_run("weekly sales report", weekly)
    assert not schedules.claim_run("weekly sales report", weekly)  # the other beat
    assert ScheduleRun.objects.filter(name="weekly sales report").count() == 1

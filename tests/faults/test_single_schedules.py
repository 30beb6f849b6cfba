"""What must be single, is: two beats, and two relays, side by side (as on two hosts), run
every schedule once and publish every job once. Real processes on the test's database and a
real broker (stack.processes)."""

import time

from django_celery_beat.models import IntervalSchedule, PeriodicTask

from jobs.clock import DbNow
from jobs.models import Job, ScheduleRun
from stack.processes import BIN
from stack.waiting import wait_until

REPORT_EVERY = 2  # seconds: the weekly report's schedule, compressed
BACKSTOP_EVERY = 3  # the relay's backstop
RUN_FOR = 14.0


def schedule(name: str, task: str, every: int) -> None:
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=every, period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.create(name=name, task=task, interval=interval)


def test_two_beats_run_each_schedule_once_per_due_time(stack, tmp_path):
    PeriodicTask.objects.all().delete()
    schedule("weekly sales report", "jobs.schedule_weekly_sales_report", REPORT_EVERY)
    schedule("relay backstop", "jobs.relay_unpublished_jobs", BACKSTOP_EVERY)
    s = stack()
    worker = s.start_worker("housekeeping", pool="threads", concurrency=2, queues="default")

    beats = [
        s.spawn(
            f"beat-{n}",
            str(BIN / "celery"),
            "-A",
            "config",
            "beat",
            "--loglevel=INFO",
            f"--schedule={tmp_path / f'beat-{n}'}",
        )
        for n in (1, 2)
    ]
    # From when the first is ready: what it sends alone counts as well.
    wait_until(
        lambda: any("beat: Starting" in beat.output() for beat in beats),
        timeout=60,
        message="a beat to start",
    )
    started = time.monotonic()
    wait_until(
        lambda: all("beat: Starting" in beat.output() for beat in beats),
        timeout=60,
        message="both beats to start",
    )
    time.sleep(RUN_FOR)
    for beat in beats:
        assert beat.alive(), beat.output()[-3000:]
        beat.stop()
    elapsed = time.monotonic() - started
    # The worker takes what was sent, by its log: each task beat sent is received, then
    # succeeds. Waited for until every run beat recorded was received (a duplicate would be
    # more, and fails below with its numbers) and every task received has succeeded.
    runs_by_task = {
        "jobs.schedule_weekly_sales_report": "weekly sales report",
        "jobs.relay_unpublished_jobs": "relay backstop",
    }

    def every_run_taken() -> bool:
        log = worker.output().splitlines()
        for task, run_name in runs_by_task.items():
            lines = [line for line in log if f"Task {task}[" in line]
            received = sum(1 for line in lines if "] received" in line)
            succeeded = sum(1 for line in lines if "] succeeded in " in line)
            if received < ScheduleRun.objects.filter(name=run_name).count():
                return False
            if succeeded != received:
                return False
        return True

    # (A beat stopped between recording a run and sending it would leave a run that never
    # arrives, and time this out: a window of a statement or two.)
    wait_until(every_run_taken, timeout=30, message="the worker to run every task beat sent")

    # Both beats were sending: each claimed some runs, and saw the other's refused.
    for beat in beats:
        assert "Sending due task" in beat.output()

    reports = Job.objects.filter(name="jobs.send_weekly_sales_report").count()
    report_runs = ScheduleRun.objects.filter(name="weekly sales report").count()
    backstops = worker.output().count("Task jobs.relay_unpublished_jobs[")
    backstop_runs = ScheduleRun.objects.filter(name="relay backstop").count()
    # Once per due time: never more runs than due times in the time both beats ran.
    # (A span of `elapsed` touches at most elapsed // every + 2 periods.)
    assert 2 <= reports <= elapsed // REPORT_EVERY + 2, (reports, elapsed)
    assert 2 <= backstops // 2 <= elapsed // BACKSTOP_EVERY + 2, (backstops, elapsed)
    # ...and each run recorded its job once (received, then succeeded: two lines per task).
    assert reports == report_runs
    assert backstops // 2 == backstop_runs


def test_two_relays_publish_each_due_job_once(stack):
    s = stack()
    due = [
        Job(
            name="jobs.track_analytics_event",
            queue="bulk",
            kwargs={"event_id": f"e{n}", "name": "e", "properties": {}},
            state="scheduled",
            eta=None,
        )
        for n in range(150)
    ]
    stranded = [
        Job(
            name="jobs.track_analytics_event",
            queue="bulk",
            kwargs={"event_id": f"s{n}", "name": "s", "properties": {}},
            state="queued",
        )
        for n in range(150)
    ]
    Job.objects.bulk_create(due + stranded)
    # Due a second ago, and committed unpublished long ago: both sweeps have work.
    Job.objects.filter(state="scheduled").update(eta=DbNow(-1))
    Job.objects.filter(state="queued").update(created_at=DbNow(-60))

    relays = [
        s.spawn(f"relay-{n}", str(BIN / "python"), "manage.py", "relay_outbox") for n in (1, 2)
    ]
    wait_until(
        lambda: not Job.objects.filter(published_at__isnull=True).exists(),
        timeout=60,
        message="every job published",
    )
    time.sleep(3)  # more rounds of both relays: nothing more to publish
    for relay in relays:
        assert relay.alive(), relay.output()[-3000:]

    assert s.broker_client().llen("bulk") == 300  # one message per job, not two
    assert set(Job.objects.values_list("publishes", flat=True)) == {1}

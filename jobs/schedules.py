"""Beat's schedules, as seeded into django-celery-beat's tables (`seed_schedules`) from
settings.JOBS_SCHEDULES:

    {"name": {"task": "jobs.relay_unpublished_jobs", "every": 300}}            # seconds
    {"name": {"task": "...", "crontab": {"minute": "0", "hour": "6", "day_of_week": "1"}}}

Once seeded, the schedules are data: edit, disable or add them in the admin under "Periodic
tasks"; beat (DatabaseScheduler) picks changes up without a restart.

A database seeded by an earlier release holds that release's defaults. A row still exactly as
an earlier release seeded it was never edited, so seeding moves it to today's default, or
deletes it if its schedule was retired; a row an operator edited stays as it is.

Beat may run on more than one host (a standby that is already running when the other's host
dies): before sending a schedule's task, each beat claims the run by the schedule's name and
due time (`claim_run`), a row whose pair is unique, and sends nothing if another beat has it.
The due time is reckoned from the database's clock (jobs.clock), so that two beats whose host
clocks differ name the same run alike.
"""

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from celery import schedules as celery_schedules
from django.conf import settings
from django.db import IntegrityError, transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from jobs.clock import DbNow, db_now
from jobs.models import ScheduleRun

# How far apart two beats' clocks may be (or the moments they tick) and still name a crontab
# run alike: half the gap between its runs, at most this.
CRONTAB_TOLERANCE = timedelta(minutes=30)

# The defaults of earlier releases, by schedule name.
FORMER_DEFAULTS: dict[str, list[dict[str, Any]]] = {
    # Every 10 s until the relay process was trusted with punctuality; now a rare backstop.
    "outbox relay sweep (backstop of relay_outbox)": [
        {"task": "jobs.relay_unpublished_jobs", "every": 10}
    ],
}
RETIRED: dict[str, dict[str, Any]] = {
    # The relay process publishes due jobs every round, and the backstop above does too.
    "publish due jobs (review reminders)": {"task": "jobs.publish_due_jobs", "every": 5},
}


def seed(*, reset: bool = False) -> list[str]:
    """Create the schedules that are missing, move unedited ones from an earlier release's
    default to today's, and delete unedited retired ones; with `reset`, also put edited ones
    back and delete retired ones however edited. Returns the names written or deleted."""
    written = []
    with transaction.atomic():
        for name, entry in _schedules().items():
            row = PeriodicTask.objects.filter(name=name).first()
            unedited = row is not None and any(
                _seeded_as(row, former) for former in FORMER_DEFAULTS.get(name, [])
            )
            if row is not None and not reset and not unedited:
                continue  # as an operator left it
            PeriodicTask.objects.update_or_create(
                name=name, defaults={"task": entry["task"], "enabled": True, **_schedule(entry)}
            )
            written.append(name)
        for name, entry in RETIRED.items():
            row = PeriodicTask.objects.filter(name=name).first()
            if row is not None and (reset or _seeded_as(row, entry)):
                row.delete()
                written.append(name)
    return written


def _schedules() -> dict[str, dict[str, Any]]:
    return cast(dict[str, dict[str, Any]], settings.JOBS_SCHEDULES)


def _seeded_as(row: PeriodicTask, entry: dict[str, Any]) -> bool:
    """Whether the row is still what seeding `entry` (an interval) made of it."""
    interval = row.interval
    return (
        row.task == entry["task"]
        and row.enabled
        and row.crontab is None
        and interval is not None
        and (interval.every, interval.period) == (entry["every"], IntervalSchedule.SECONDS)
    )


def _schedule(entry: dict[str, Any]) -> dict[str, Any]:
    if "every" in entry:
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=entry["every"], period=IntervalSchedule.SECONDS
        )
        return {"interval": interval, "crontab": None}
    crontab, _ = CrontabSchedule.objects.get_or_create(
        **{"minute": "0", "hour": "*", "day_of_week": "*", **entry["crontab"]},
        day_of_month="*",
        month_of_year="*",
    )
    return {"crontab": crontab, "interval": None}


def claim_run(name: str, schedule: Any) -> bool:
    """Take the run of the schedule `name` that is due now, for this beat to send; False if
    another beat has taken it already."""
    due_at = due_time(schedule, now=db_now())
    try:
        with transaction.atomic():
            ScheduleRun.objects.create(name=name, due_at=due_at, sent_at=DbNow())
    except IntegrityError:
        return False
    return True


def due_time(schedule: Any, *, now: datetime) -> datetime:
    """The due time of the run of `schedule` that is due at `now`, the same for every beat
    that sends it within the tolerance: an interval's runs are the multiples of its period
    (since 1970); a crontab's run is its first time after `now` less half its gap (at most
    CRONTAB_TOLERANCE): a beat whose clock is ahead, or behind, by less names the same."""
    if isinstance(schedule, celery_schedules.crontab):
        first = _next_cron(schedule, now - CRONTAB_TOLERANCE)
        gap = _next_cron(schedule, first) - first
        return _next_cron(schedule, now - min(CRONTAB_TOLERANCE, gap / 2))
    every = schedule.run_every.total_seconds() if hasattr(schedule, "run_every") else 1.0
    period = max(every, 1.0)
    slot = int(now.timestamp() // period) * period
    return datetime.fromtimestamp(slot, tz=UTC)


def _next_cron(schedule: celery_schedules.crontab, after: datetime) -> datetime:
    """The crontab's first time strictly after `after`."""
    start, delta, _ = schedule.remaining_delta(after.replace(second=0, microsecond=0))
    nxt: datetime = start + delta
    return nxt.astimezone(UTC)


def forget_old_runs(*, days: int) -> int:
    """Delete the record of schedule runs older than `days` (jobs.retention)."""
    deleted, _ = ScheduleRun.objects.filter(sent_at__lt=DbNow(-days * 86400)).delete()
    return deleted

"""The periodic work beat does, as seeded into django-celery-beat's tables (`seed_schedules`).

Once seeded, the schedules are data: edit, disable or add them in the admin under "Periodic
tasks"; beat (DatabaseScheduler) picks changes up without a restart.
"""

from dataclasses import dataclass

from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask


@dataclass(frozen=True)
class Every:
    seconds: int


@dataclass(frozen=True)
class Crontab:
    minute: str = "0"
    hour: str = "*"
    day_of_week: str = "*"


SCHEDULES = {
    "publish due jobs (review reminders)": ("jobs.publish_due_jobs", Every(5)),
    "outbox relay sweep (backstop of relay_outbox)": ("jobs.relay_unpublished_jobs", Every(10)),
    "purge old jobs and task results": ("jobs.purge_old_records", Crontab(minute="17")),
    "weekly sales report (Mondays 06:00)": (
        "jobs.schedule_weekly_sales_report",
        Crontab(minute="0", hour="6", day_of_week="1"),
    ),
}


def seed(*, reset: bool = False) -> list[str]:
    """Create the schedules that are missing; with `reset`, put edited ones back. Returns the
    names written."""
    written = []
    with transaction.atomic():
        for name, (task, when) in SCHEDULES.items():
            if not reset and PeriodicTask.objects.filter(name=name).exists():
                continue
            PeriodicTask.objects.update_or_create(
                name=name, defaults={"task": task, "enabled": True, **_schedule(when)}
            )
            written.append(name)
    return written


def _schedule(when: Every | Crontab) -> dict:
    if isinstance(when, Every):
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=when.seconds, period=IntervalSchedule.SECONDS
        )
        return {"interval": interval, "crontab": None}
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=when.minute,
        hour=when.hour,
        day_of_week=when.day_of_week,
        day_of_month="*",
        month_of_year="*",
    )
    return {"crontab": crontab, "interval": None}

"""Beat's schedules, as seeded into django-celery-beat's tables (`seed_schedules`) from
settings.JOBS_SCHEDULES:

    {"name": {"task": "jobs.publish_due_jobs", "every": 5}}                    # seconds
    {"name": {"task": "...", "crontab": {"minute": "0", "hour": "6", "day_of_week": "1"}}}

Once seeded, the schedules are data: edit, disable or add them in the admin under "Periodic
tasks"; beat (DatabaseScheduler) picks changes up without a restart.
"""

from typing import Any, cast

from django.conf import settings
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask


def seed(*, reset: bool = False) -> list[str]:
    """Create the schedules that are missing; with `reset`, put edited ones back. Returns the
    names written."""
    written = []
    with transaction.atomic():
        for name, entry in _schedules().items():
            if not reset and PeriodicTask.objects.filter(name=name).exists():
                continue
            PeriodicTask.objects.update_or_create(
                name=name, defaults={"task": entry["task"], "enabled": True, **_schedule(entry)}
            )
            written.append(name)
    return written


def _schedules() -> dict[str, dict[str, Any]]:
    return cast(dict[str, dict[str, Any]], settings.JOBS_SCHEDULES)


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

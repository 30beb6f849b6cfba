"""Beat's scheduler: django-celery-beat's, which reads the schedules from the database, and
which touches BEAT_ALIVE_FILE (when set) at each tick, for a health check. A tick comes at
least every 5 s (the scheduler's longest sleep), so a file older than a minute means a beat
that is stuck or gone (docker-compose.yml's check: bin/healthcheck fresh).

Beat may run on two hosts: each run of a schedule is claimed in the database before it is
sent (jobs.schedules.claim_run), so the second beat sends nothing that the first has sent."""

from pathlib import Path
from typing import Any

from django.conf import settings
from django_celery_beat.schedulers import DatabaseScheduler

from jobs import schedules


class Scheduler(DatabaseScheduler):
    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval: float = super().tick(*args, **kwargs)
        if settings.BEAT_ALIVE_FILE:
            Path(settings.BEAT_ALIVE_FILE).touch()
        return interval

    def apply_async(
        self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any
    ) -> Any:
        if not schedules.claim_run(entry.name, entry.schedule):
            return None  # another beat sent this run: this one only moves on to the next
        return super().apply_async(entry, producer=producer, advance=advance, **kwargs)

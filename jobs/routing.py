"""Every task goes to the queue its declaration names (`@job(..., queue="critical")`).

Celery 5.7 deprecates a task's own `queue` attribute in favour of the task_routes setting
(celery/app/task.py: "The 'queue' task attribute ... Use the task_routes setting instead"), so
the declaration keeps its queue as `queue_name` and this router, which settings name as the
one entry of CELERY_TASK_ROUTES, reads it for every message Celery sends itself: beat's,
a retry's, a `.delay()`. (jobs.dispatch publishes ledger jobs with the queue their row
recorded, which came from the same place.)
"""

from typing import Any


def route_to_declared_queue(
    name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **extra: Any
) -> dict[str, str] | None:
    queue = getattr(task, "queue_name", None)
    return {"queue": queue} if queue else None

"""Which queue each job goes to, and which worker takes which queues."""

from django.conf import settings


def queue_for(task_name: str) -> str:
    """The queue settings.CELERY_TASK_ROUTES sends this task to."""
    route = settings.CELERY_TASK_ROUTES.get(task_name, {})
    return route.get("queue", settings.CELERY_TASK_DEFAULT_QUEUE)


# The workers of a deployment (Procfile, docker-compose.yml, bench/, tests/faults):
# - io:    the I/O-bound jobs, on a thread pool (they wait on third parties, not on the CPU);
# - crm:   the CRM jobs, alone: their threads wait for the CRM's rate limit
#          (jobs.clients.rate_limits), and on a shared worker a backlog of them would hold
#          the threads and prefetch slots that every other queue needs
#          (tests/faults/test_backlogs.py);
# - media: the CPU-bound thumbnails, on a process pool of one process per core.
WORKER_QUEUES = {
    "io": ("critical", "default", "bulk", "webhooks", "dead_letter"),
    "crm": ("crm",),
    "media": ("media",),
}

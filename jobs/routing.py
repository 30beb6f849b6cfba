from django.conf import settings


def queue_for(task_name: str) -> str:
    """The queue settings.CELERY_TASK_ROUTES sends this task to."""
    route = settings.CELERY_TASK_ROUTES.get(task_name, {})
    return route.get("queue", settings.CELERY_TASK_DEFAULT_QUEUE)

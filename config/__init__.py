# Load the Celery app whenever Django starts, so `@shared_task` binds to it and
# `transaction.on_commit` publishing works from the web process.
from config.celery import app as celery_app

__all__ = ("celery_app",)

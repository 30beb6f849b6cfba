"""Beat's housekeeping. Not ledger jobs: they run every few seconds and carry no state."""

from celery import shared_task

from jobs import dispatch


@shared_task(name="jobs.publish_due_jobs", ignore_result=True)
def publish_due_jobs() -> int:
    return dispatch.publish_due()


@shared_task(name="jobs.relay_unpublished_jobs", ignore_result=True)
def relay_unpublished_jobs() -> int:
    return dispatch.relay_unpublished()

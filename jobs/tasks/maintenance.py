"""Beat's housekeeping. Not ledger jobs: they run every few seconds and carry no state."""

from celery import shared_task

from jobs import dispatch, retention


@shared_task(name="jobs.publish_due_jobs", ignore_result=True)
def publish_due_jobs() -> int:
    return dispatch.publish_due()


# A backstop for deployments that run no `relay_outbox` process; it reaches the broker only
# once the broker is back, which is when it is needed.
@shared_task(name="jobs.relay_unpublished_jobs", ignore_result=True)
def relay_unpublished_jobs() -> int:
    return dispatch.relay()


@shared_task(name="jobs.purge_old_records", ignore_result=True)
def purge_old_records() -> dict:
    return retention.purge_old_records()

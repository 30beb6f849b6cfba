"""The job machinery's own tasks: recording dead letters, and beat's housekeeping."""

from jobs import dead_letters, relay, retention
from jobs.base import RECORD_DEAD_LETTER, beat_task, job


@job(RECORD_DEAD_LETTER, queue="dead_letter")
def record_dead_letter(*, job_id: str, error: str, traceback: str) -> dict[str, int]:
    letter = dead_letters.record(job_id=job_id, error=error, traceback=traceback)
    return {"dead_letter_id": letter.pk}


# Beat's housekeeping (settings.JOBS_SCHEDULES).


# No longer scheduled (the relay publishes due jobs every round); kept so that a schedule or a
# message of an earlier release still finds its task.
@beat_task("jobs.publish_due_jobs", queue="default")
def publish_due_jobs() -> int:
    return relay.publish_due()


# The backstop of the `relay_outbox` process, every few minutes: what it publishes waits at
# most that long while that process is down. It reaches the broker only once the broker is
# back, which is when it is needed.
@beat_task("jobs.relay_unpublished_jobs", queue="default")
def relay_unpublished_jobs() -> int:
    return relay.relay()


@beat_task("jobs.purge_old_records", queue="bulk")
def purge_old_records() -> dict[str, int]:
    return retention.purge_old_records()

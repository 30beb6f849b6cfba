from celery import shared_task

from jobs import dead_letters
from jobs.base import LedgerTask


@shared_task(base=LedgerTask, name="jobs.record_dead_letter")
def record_dead_letter(*, job_id: str, error: str, traceback: str) -> dict:
    letter = dead_letters.record(job_id=job_id, error=error, traceback=traceback)
    return {"dead_letter_id": letter.pk}

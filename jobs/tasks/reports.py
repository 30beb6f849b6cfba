from celery import shared_task

from jobs.base import LedgerTask
from jobs.dispatch import enqueue
from shop import reports


@shared_task(bind=True, base=LedgerTask, name="jobs.send_weekly_sales_report")
def send_weekly_sales_report(self, *, week: str) -> dict:
    return {"file": reports.send_weekly_sales_report(week=week, job_id=self.request.id)}


# Beat's entry point: records the week's report as a job, so it shows in the ledger, retries
# like any other and is keyed by its week.
@shared_task(name="jobs.schedule_weekly_sales_report", ignore_result=True)
def schedule_weekly_sales_report() -> str:
    week = reports.last_week()
    enqueue(send_weekly_sales_report, week=week)
    return week

"""The shop's jobs. Each is declared here once, with its name, its queue and what differs
for it from the shared retry policy (jobs.base.job); its body decodes ids and calls the one
function that does the work.

A job's name is its identity in the ledger, on the broker and in the API: services record
jobs by it (`jobs.dispatch.new_job("jobs.charge_payment", ...)`), so it never changes. These
were named before they moved here from the job machinery, hence `jobs.` (docs/adding-a-job.md).
"""

from celery import Task

from jobs import dispatch
from jobs.base import LedgerTask, beat_task, job
from jobs.errors import TransientError
from shop import avatars, emails, exports, integrations, invoices, reports, services

# --- emails (SMTP) -----------------------------------------------------------------------------


@job("jobs.send_welcome_email", queue="critical", bind=True)
def send_welcome_email(self: Task, *, customer_id: int) -> dict[str, bool]:
    return {"sent": emails.send_welcome_email(customer_id=customer_id, job_id=self.request.id)}


@job("jobs.send_order_confirmation", queue="critical", bind=True)
def send_order_confirmation(self: Task, *, order_id: int) -> dict[str, bool]:
    return {"sent": emails.send_order_confirmation(order_id=order_id, job_id=self.request.id)}


@job("jobs.send_review_reminder", queue="default", bind=True)
def send_review_reminder(self: Task, *, order_id: int) -> dict[str, bool]:
    return {"sent": emails.send_review_reminder(order_id=order_id, job_id=self.request.id)}


# --- third parties over HTTP -------------------------------------------------------------------


@job("jobs.charge_payment", queue="critical")
def charge_payment(*, order_id: int) -> dict[str, str]:
    return {"status": integrations.charge_order(order_id=order_id)}


# Critical: it is the customer's money.
@job("jobs.refund_payment", queue="critical")
def refund_payment(*, order_id: int) -> dict[str, str]:
    return {"refund_id": integrations.refund_order(order_id=order_id)}


@job("jobs.track_analytics_event", queue="bulk")
def track_analytics_event(
    *, event_id: str, name: str, properties: dict[str, object]
) -> dict[str, str]:
    integrations.track_event(event_id=event_id, name=name, properties=properties)
    return {"event_id": event_id}


# Not `critical`: nothing waits on it; not `bulk`: the customer should get it within a minute.
@job("jobs.send_shipping_notification", queue="default")
def send_shipping_notification(*, order_id: int) -> dict[str, bool]:
    return {"sent": services.send_shipping_notification(order_id=order_id)}


# The CRM allows settings.CRM_RATE_LIMIT calls, counted across every worker by its client
# (jobs.rate_limits): its jobs have a queue and a worker of their own, whose threads wait
# there for their turn (settings.JOBS_WORKER_QUEUES).


@job("jobs.sync_crm_contact", queue="crm")
def sync_crm_contact(*, customer_id: int) -> dict[str, bool]:
    integrations.sync_customer_to_crm(customer_id=customer_id)
    return {"synced": True}


@job("jobs.sync_crm_deal", queue="crm")
def sync_crm_deal(*, order_id: int) -> dict[str, bool]:
    integrations.sync_order_to_crm(order_id=order_id)
    return {"synced": True}


# --- CPU-bound ---------------------------------------------------------------------------------


# Only the storage is retried (shop.avatars raises its failures as TransientError: an object
# store that did not answer); an image that cannot be decoded now will not be later.
@job("jobs.make_avatar_thumbnails", queue="media", autoretry_for=(TransientError,), bind=True)
def make_avatar_thumbnails(self: Task, *, customer_id: int) -> dict[str, dict[str, str]]:
    thumbnails = avatars.make_thumbnails(customer_id=customer_id, job_id=self.request.id)
    return {"thumbnails": thumbnails}


# The shared policy: what can pass is retried (the storage not taking the file, which
# shop.invoices raises as a TransientError; the database); a document fpdf2 cannot make is made
# no better by trying again (PermanentError), and is a dead letter at once.
@job("jobs.make_invoice", queue="media")
def make_invoice(*, order_id: int) -> dict[str, str]:
    return {"file": invoices.make_invoice(order_id=order_id)}


# --- the weekly sales report -------------------------------------------------------------------


@job("jobs.send_weekly_sales_report", queue="bulk", bind=True)
def send_weekly_sales_report(self: Task, *, week: str) -> dict[str, str | None]:
    return {"file": reports.send_weekly_sales_report(week=week, job_id=self.request.id)}


# Beat's entry point (settings.JOBS_SCHEDULES): records the week's report as a job, so that
# it shows in the ledger, retries like any other and is keyed by its week.
@beat_task("jobs.schedule_weekly_sales_report", queue="default")
def schedule_weekly_sales_report() -> str:
    week = reports.last_week()
    dispatch.enqueue("jobs.send_weekly_sales_report", week=week)
    return week


# --- staff's order exports ---------------------------------------------------------------------


# Long: it reports its progress after each chunk, resumes from the last finished chunk after a
# lost run, and stops at its next report when an operator cancels it (shop.exports).
@job("jobs.export_orders", queue="bulk", bind=True, cancellable_while_running=True)
def export_orders(self: LedgerTask, *, export_id: int) -> dict[str, str | None]:
    return {"file": exports.write_export(export_id=export_id, report=self.report_progress)}

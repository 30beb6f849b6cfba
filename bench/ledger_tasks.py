"""A ledger job that does nothing: the job machinery alone (section 2), without the third
party call that the app's real jobs make. Loaded by the bench's I/O workers with
`celery worker --include bench.ledger_tasks`; the app never imports it."""

from celery import shared_task

from jobs.base import LedgerTask


@shared_task(base=LedgerTask, name="bench.ledger_noop")
def ledger_noop(**kwargs) -> None:
    """Claimed, run and finished in the ledger like every job; takes the analytics job's
    arguments so that its message is the same size, and ignores them."""

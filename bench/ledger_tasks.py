"""A ledger job that does nothing: the job machinery alone (section 2), without the third
party call that the app's real jobs make. Loaded by the bench's I/O workers with
`celery worker --include bench.ledger_tasks`; the app never imports it."""

from jobs.base import job


@job("bench.ledger_noop", queue="default")
def ledger_noop(**kwargs) -> None:
    """Claimed, run and finished in the ledger like every job; takes the analytics job's
    arguments so that its message is the same size, and ignores them."""

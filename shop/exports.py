"""Staff's order exports: the CSV of the orders placed in a date range, written by the
`jobs.export_orders` job (shop.tasks) in chunks, with its progress in the ledger.

Each chunk of EXPORT_CHUNK_ROWS orders, by ascending id, is a file of its own in the exports
storage (Django's storage API: no appending, no local path assumed, so a file system or an
object store alike, config.media). Once a chunk's file is written, the run records the
checkpoint (the chunk's number, the rows written, the last order id) together with the job's
progress, in one transaction and fenced by the run's attempt: a run that no longer holds its
job records nothing. A run that takes over after a lost one (its
worker was killed) starts after the last recorded chunk, overwriting a chunk file the lost run
may have written past it, so that no order is written twice or left out. The last run joins
the chunks under a header into the export's file and deletes them.

An operator may cancel the job while it runs (`cancellable_while_running`): the run stops at
its next progress report, deletes what it wrote, and the job ends `cancelled`.
"""

import csv
import io
import shutil
import tempfile
import time
from collections.abc import Iterable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from typing import Protocol

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage
from django.db import transaction
from django.db.models import Count, Max, QuerySet
from django.utils import timezone

from jobs import shutdown
from jobs.errors import CancelRequested, PermanentError, TransientError
from shop.files import replace_file
from shop.models import STORAGE_ERRORS, Order, OrderExport, exports_storage

COLUMNS = [
    "order_id",
    "placed_at",
    "status",
    "customer_email",
    "customer_name",
    "items",
    "total",
    "currency",
    "shipped_at",
]


class Reporter(Protocol):
    """The job's progress report (jobs.base.LedgerTask.report_progress): False once the run no
    longer holds its job; raises CancelRequested once an operator asked it to stop."""

    def __call__(self, *, done: int, total: int) -> bool: ...


def orders_in(export: OrderExport) -> QuerySet[Order]:
    """The orders placed from the start day's first moment to the end day's last (UTC)."""
    since = datetime.combine(export.start, clock.min, tzinfo=UTC)
    until = datetime.combine(export.end + timedelta(days=1), clock.min, tzinfo=UTC)
    return Order.objects.filter(created_at__gte=since, created_at__lt=until).order_by("pk")


def chunk_name(export_id: int, number: int) -> str:
    return f"parts/{export_id}/chunk-{number:06d}.csv"


def render(rows: Iterable[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


def as_text(value: str) -> str:
    """A customer's own words as a spreadsheet's text, never its formula: a cell that starts
    with = + - @ (or a tab or a carriage return) is run as one when staff open the file
    (CSV injection); a leading apostrophe keeps it text."""
    return f"'{value}" if value.startswith(("=", "+", "-", "@", "\t", "\r")) else value


def row(order: Order) -> list[str]:
    items = "; ".join(f"{line.product.sku} x{line.quantity}" for line in order.lines.all())
    return [
        str(order.pk),
        order.created_at.isoformat(),
        order.status,
        as_text(order.customer.user.email),
        as_text(order.customer.name),
        items,
        str(order.total),
        order.currency,
        order.shipped_at.isoformat() if order.shipped_at else "",
    ]


def write_export(*, export_id: int, report: Reporter) -> str | None:
    """The job's work: write what is left of the export, then its file. Returns the file's
    name, or None if this run lost its job to another (which carries on from the checkpoint)."""
    export = OrderExport.objects.filter(pk=export_id).first()
    if export is None:
        raise PermanentError(f"order export {export_id} is gone")
    if export.file:
        return export.file.name  # finished by an earlier run
    storage = exports_storage()
    try:
        return _write(export, storage, report)
    except CancelRequested:
        _delete_parts(storage, export.pk)
        raise
    except STORAGE_ERRORS as exc:
        # A full disk, an object store that did not answer: the retry resumes from the
        # checkpoint, like a run after a lost one.
        raise TransientError(f"export storage: {exc}") from exc


def open_export(export: OrderExport) -> File:
    """The finished export's CSV, opened for reading from the exports storage (as it is now,
    not as the model field found it: shop.models.invoice_storage says why)."""
    return exports_storage().open(export.file.name, "rb")


def _checkpoint(export: OrderExport, report: Reporter, *, total: int, **fields: object) -> bool:
    """Record the progress and the export's fields in one transaction, if this run still holds
    its job (the report is the fence: it writes nothing otherwise)."""
    with transaction.atomic():
        done = fields.get("rows_written", export.rows_written)
        if not report(done=done if isinstance(done, int) else export.rows_written, total=total):
            return False
        OrderExport.objects.filter(pk=export.pk).update(**fields)
    for name, value in fields.items():
        setattr(export, name, value)
    return True


def _write(export: OrderExport, storage: Storage, report: Reporter) -> str | None:
    if export.max_order_id is None:
        # The first run counts what the export will hold, and where it ends.
        counted = orders_in(export).aggregate(rows=Count("pk"), top=Max("pk"))
        total = int(counted["rows"])
        if not _checkpoint(
            export, report, total=total, rows_total=total, max_order_id=counted["top"] or 0
        ):
            return None
    else:
        # A run after a lost one (or after a retry): on from the last finished chunk.
        total = export.rows_total or 0
        resumed = {"resumed_from_chunk": export.chunks_done + 1} if export.chunks_done else {}
        if not _checkpoint(export, report, total=total, **resumed):
            return None
    remaining = orders_in(export).filter(pk__lte=export.max_order_id)
    remaining = remaining.select_related("customer__user").prefetch_related("lines__product")
    chunk_rows = settings.EXPORT_CHUNK_ROWS
    while True:
        shutdown.checkpoint()  # a safe point: a stopping worker hands the export back here
        orders = list(remaining.filter(pk__gt=export.last_order_id or 0)[:chunk_rows])
        if not orders:
            break
        number = export.chunks_done + 1
        _save_as(storage, chunk_name(export.pk, number), render(row(o) for o in orders))
        written = export.rows_written + len(orders)
        if not _checkpoint(
            export,
            report,
            total=max(total, written),
            chunks_done=number,
            rows_written=written,
            last_order_id=orders[-1].pk,
        ):
            return None
        if settings.EXPORT_CHUNK_DELAY_SECONDS:
            time.sleep(settings.EXPORT_CHUNK_DELAY_SECONDS)  # the demo's pacing only
    return _finish(export, storage, report)


def _finish(export: OrderExport, storage: Storage, report: Reporter) -> str | None:
    """Join the chunks under the header into the export's file, and offer it."""
    with tempfile.TemporaryFile() as joined:
        joined.write(render([COLUMNS]))
        for number in range(1, export.chunks_done + 1):
            with storage.open(chunk_name(export.pk, number), "rb") as part:
                shutil.copyfileobj(part, joined)
        joined.seek(0)
        name = storage.save(f"orders/{export.download_name}", File(joined))
    try:
        # Orders deleted since the count leave it short: the total is what the file holds.
        finished = _checkpoint(
            export,
            report,
            total=export.rows_written,
            file=name,
            finished_at=timezone.now(),
            rows_total=export.rows_written,
        )
    except CancelRequested:
        storage.delete(name)
        raise
    if not finished:
        storage.delete(name)  # the run that holds the job now writes its own
        return None
    _delete_parts(storage, export.pk)
    return name


def _save_as(storage: Storage, name: str, content: bytes) -> None:
    """Write the file under exactly this name, replacing one a lost run left there."""
    saved = replace_file(storage, name, content, what="export")
    if saved != name:  # written meanwhile by a run that lost the job and does not know yet
        storage.delete(saved)
        raise TransientError(f"{name} was being written by another run")


def _delete_parts(storage: Storage, export_id: int) -> None:
    folder = f"parts/{export_id}"
    # Listed, not asked whether it exists: an object store has no folders, only names that
    # start alike, and says a folder does not exist when files are in it.
    try:
        names = storage.listdir(folder)[1]
    except FileNotFoundError:  # a file system's folder, never made
        return
    for name in names:
        storage.delete(f"{folder}/{name}")
    with suppress(OSError):  # a file system's folder (other storages have none to delete)
        storage.delete(folder)

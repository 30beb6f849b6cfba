"""Staff's order export on a real worker over the real broker: the CSV holds every order of
the range once, under the header; the ledger's progress ends at N of N; a cancel while it
runs stops it, with no file offered. (A worker killed mid-export: tests/faults/
test_export_resume.py.)"""

import csv
import io
import time

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from jobs import operations
from jobs.models import Job
from shop import exports, services
from shop.models import OrderExport
from tests.factories import many_orders

pytestmark = pytest.mark.integration


@pytest.fixture
def staff(transactional_db):
    return get_user_model().objects.create_user(
        username="ops@example.com", email="ops@example.com", password="x-ops-1", is_staff=True
    )


def _wait(condition, timeout: float = 30, message: str = "the export"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {message}")


def _final(export: OrderExport) -> Job:
    return _wait(lambda: (job := Job.objects.get(pk=str(export.job_id))).is_final and job)


def _csv_rows(name: str) -> list[list[str]]:
    with exports.exports_storage().open(name) as written:
        return list(csv.reader(io.StringIO(written.read().decode())))


def test_an_export_writes_every_order_of_its_days_once_and_reports_n_of_n(
    celery_worker, staff, settings
):
    settings.EXPORT_CHUNK_ROWS = 5
    order_ids = many_orders(23)
    today = timezone.now().date()

    export = services.request_order_export(by=staff, start=today, end=today)

    job = _final(export)
    assert job.state == "succeeded", job.last_error
    assert job.progress == {"done": 23, "total": 23}
    export.refresh_from_db()
    assert (export.chunks_done, export.rows_written, export.rows_total) == (5, 23, 23)
    assert export.resumed_from_chunk is None  # one run did it all
    rows = _csv_rows(export.file.name)
    assert rows[0] == exports.COLUMNS
    assert [int(row[0]) for row in rows[1:]] == order_ids
    assert {row[5] for row in rows[1:]} == {"EXP-001 x2"}
    # The chunks are joined and gone.
    assert not exports.exports_storage().exists(f"parts/{export.pk}")


def test_an_export_cancelled_while_it_runs_stops_and_offers_no_file(
    celery_worker, staff, settings, client
):
    settings.EXPORT_CHUNK_ROWS = 2
    settings.EXPORT_CHUNK_DELAY_SECONDS = 0.2  # 15 chunks: 3 s, time enough to cancel
    many_orders(30)
    today = timezone.now().date()
    export = services.request_order_export(by=staff, start=today, end=today)
    _wait(lambda: (Job.objects.get(pk=export.job_id).progress_done or 0) >= 4, message="progress")

    asked = operations.cancel(str(export.job_id), by=staff, reason="wrong days")

    assert asked.stopping
    job = _final(export)
    assert (job.state, job.outcome_reason) == ("cancelled", "wrong days")
    assert job.progress["done"] < 30
    export.refresh_from_db()
    assert not export.file
    assert export.finished_at is None
    assert not exports.exports_storage().exists(f"parts/{export.pk}")  # its chunks deleted
    client.force_login(staff)
    assert client.get(f"/ops/exports/{export.pk}/download").status_code == 404
    page = client.get("/ops/exports").content.decode()
    assert "wrong days" in page
    assert "Download CSV" not in page

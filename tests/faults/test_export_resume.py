"""A long export whose worker is killed mid-way is taken up again from its last finished
chunk: nothing written twice, nothing left out."""

import csv
import io
import os
import signal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from jobs.models import DeadLetter, Job
from shop import exports
from shop.models import OrderExport
from shop.tokens import issue_token
from stack.processes import children_of
from stack.waiting import wait_until
from tests.factories import many_orders

pytestmark = pytest.mark.faults

ORDERS = 1200
CHUNK_ROWS = 100  # 12 chunks


def test_an_export_whose_worker_is_killed_resumes_from_its_last_finished_chunk(stack):
    app = stack(
        EXPORT_CHUNK_ROWS=CHUNK_ROWS,
        # About 4 s for the whole export: time to kill it in the middle.
        EXPORT_CHUNK_DELAY_SECONDS=0.3,
        # Above the export's length (the fast clocks' 6 s would be close).
        JOBS_SOFT_TIME_LIMIT=20,
        JOBS_TIME_LIMIT=30,
    )
    app.start_web(), app.start_relay()
    worker = app.start_worker(concurrency=1, queues="bulk,dead_letter")  # prefork, one child
    order_ids = many_orders(ORDERS)
    staff = get_user_model().objects.create_user(
        username="ops@example.com", email="ops@example.com", is_staff=True
    )
    today = timezone.now().date().isoformat()

    answer = app.post("/api/ops/exports", {"start": today, "end": today}, token=issue_token(staff))
    assert answer.status_code == 202, answer.text
    export_id = answer.json()["export"]["id"]

    def chunks_done() -> int:
        return OrderExport.objects.get(pk=export_id).chunks_done

    wait_until(lambda: chunks_done() >= 3, timeout=60, message="three finished chunks")
    [child] = children_of(worker.pid)
    os.kill(child, signal.SIGKILL)  # mid-export, no goodbyes
    finished_when_killed = chunks_done()
    assert finished_when_killed < ORDERS // CHUNK_ROWS  # it really was cut short

    wait_until(
        lambda: Job.objects.get(pk=answer.json()["job"]["id"]).is_final,
        timeout=90,
        message="the export to finish after its lease ran out",
    )
    export = OrderExport.objects.select_related("job").get(pk=export_id)
    job = export.job
    assert job.state == "succeeded", job.last_error
    assert (job.attempts, job.lost_runs) == (2, 1)  # the killed run and the one after it
    # The second run started after the last chunk the first one finished, not from the start.
    assert export.resumed_from_chunk == finished_when_killed + 1
    assert export.chunks_done == ORDERS // CHUNK_ROWS
    assert export.rows_written == ORDERS  # no chunk counted twice
    assert job.progress == {"done": ORDERS, "total": ORDERS}
    with exports.exports_storage().open(export.file.name) as written:
        rows = list(csv.reader(io.StringIO(written.read().decode())))
    assert rows[0] == exports.COLUMNS
    assert [int(row[0]) for row in rows[1:]] == order_ids  # every order once, in order
    assert not DeadLetter.objects.exists()

"""A long export whose worker is killed mid-way is taken up again from its last finished
chunk: nothing written twice, nothing left out; on the file system and on an S3-compatible
object store (moto's server), where the web and the worker share no disk."""

import csv
import io
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from jobs.models import DeadLetter, Job
from shop import exports
from shop.models import OrderExport
from shop.tokens import issue_token
from stack.procfs import children_of
from stack.waiting import wait_until
from tests.factories import many_orders
from tests.object_store import moto_server

pytestmark = pytest.mark.faults

ORDERS = 1200
CHUNK_ROWS = 100  # 12 chunks


@dataclass
class ExportsStorage:
    """Where the processes keep the exports, and how the test reads them back."""

    read: Callable[[str], bytes]
    leftover_parts: Callable[[int], list[str]]
    environment: dict[str, str] = field(default_factory=dict)


def _file_system_parts(export_id: int) -> list[str]:
    try:
        return exports.exports_storage().listdir(f"parts/{export_id}")[1]
    except FileNotFoundError:
        return []


# The object store's run adds its own server to the stack's processes: a minute more, once.
@pytest.fixture(params=["file system", pytest.param("object store", marks=pytest.mark.heavy)])
def exports_storage(request, tmp_path) -> Iterator[ExportsStorage]:
    if request.param == "file system":
        yield ExportsStorage(
            read=lambda name: exports.exports_storage().open(name).read(),
            leftover_parts=_file_system_parts,
        )
        return
    # Each process is given local media directories that must never be made: whatever it
    # writes, another host would not find.
    local = tmp_path / "local-media"
    with moto_server() as store:
        bucket = store.new_bucket()
        yield ExportsStorage(
            read=lambda name: store.read(bucket, f"exports/{name}"),
            leftover_parts=lambda export_id: store.keys(bucket, f"exports/parts/{export_id}/"),
            environment={
                **store.environment(bucket),
                "MEDIA_ROOT": str(local / "media"),
                "PRIVATE_MEDIA_ROOT": str(local / "private"),
                "EXPORTS_ROOT": str(local / "exports"),
            },
        )
    assert not Path(local).exists()


def test_an_export_whose_worker_is_killed_resumes_from_its_last_finished_chunk(
    stack, exports_storage
):
    app = stack(
        **exports_storage.environment,
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
    rows = list(csv.reader(io.StringIO(exports_storage.read(export.file.name).decode())))
    assert rows[0] == exports.COLUMNS
    assert [int(row[0]) for row in rows[1:]] == order_ids  # every order once, in order
    assert exports_storage.leftover_parts(export_id) == []  # the chunks, joined, are gone
    assert not DeadLetter.objects.exists()

"""Section 2's CPU per job of the PostgreSQL server: the server's processes' CPU time, read
from /proc, grows by what the statements cost it."""

import os
import time

import pytest
from django.db import connection

from bench.stats import postgres_cpu_seconds

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(
    connection.vendor != "postgresql" or connection.settings_dict["HOST"] != "127.0.0.1",
    reason="a PostgreSQL server on this machine",
)
def test_the_servers_cpu_grows_by_the_work_it_is_given():
    before = postgres_cpu_seconds()
    with connection.cursor() as cursor:
        started = time.thread_time()
        # About a second of the server's CPU, and next to nothing of this process's.
        cursor.execute("SELECT sum(sqrt(n)) FROM generate_series(1, 10000000) AS n")
        cursor.fetchone()
        client = time.thread_time() - started
    after = postgres_cpu_seconds()

    assert before is not None
    assert after is not None
    assert after - before > 10 * max(client, 0.01)


def _process(proc, pid: int, name: str, *, utime: int, stime: int, cutime: int) -> None:
    (proc / str(pid)).mkdir()
    times = f"{utime} {stime} {cutime} 0"
    (proc / str(pid) / "stat").write_text(
        f"{pid} ({name}) S 1 1 1 0 -1 4194304 100 0 0 0 {times} 20 0 1 0 1 1 1"
    )


def test_every_server_process_counts_with_the_backends_it_has_reaped(tmp_path):
    tick = os.sysconf("SC_CLK_TCK")
    _process(tmp_path, 10, "postgres", utime=tick, stime=0, cutime=3 * tick)  # the postmaster
    _process(tmp_path, 11, "postgres", utime=2 * tick, stime=tick, cutime=0)  # a backend
    _process(tmp_path, 12, "celery) (postgres", utime=50 * tick, stime=0, cutime=0)

    assert postgres_cpu_seconds(tmp_path) == pytest.approx(7)


def test_without_a_server_on_this_machine_there_is_no_figure(tmp_path):
    _process(tmp_path, 42, "python3", utime=100, stime=100, cutime=0)

    assert postgres_cpu_seconds(tmp_path) is None

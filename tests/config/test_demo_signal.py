"""`make kill-worker`, `make kill-broker`, `make broker-down` and `make broker-up` find the
demo's processes by the pid files they write under var/run/ (bin/demo-signal), never by name:
on a shared machine a pattern can match somebody else's process, and a pid file left by a demo
that was killed can name a pid the system has since given to another program."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

DEMO_SIGNAL = Path(settings.BASE_DIR) / "bin" / "demo-signal"


def sleeper(*marker: str) -> subprocess.Popen:
    """A process whose command line carries `marker`, as a demo worker's carries `celery`."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *marker])


def demo_signal(signal: str, what: str, *pid_files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(DEMO_SIGNAL), signal, what, *map(str, pid_files)],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


@pytest.fixture
def processes():
    started: list[subprocess.Popen] = []

    def start(*marker: str) -> subprocess.Popen:
        started.append(sleeper(*marker))
        return started[-1]

    yield start
    for process in started:  # by their own pids: they are this test's
        process.kill()
        process.wait()


def test_the_process_a_pid_file_names_gets_the_signal(processes, tmp_path):
    worker = processes("celery", "worker")
    (pid_file := tmp_path / "worker-io.pid").write_text(str(worker.pid))

    done = demo_signal("KILL", "celery", pid_file)

    assert done.returncode == 0, done.stderr
    assert worker.wait(timeout=5) == -9


def test_a_pid_file_naming_another_program_is_skipped_and_the_program_left_alone(
    processes, tmp_path
):
    # The pid a killed demo's file named, given since to a program of somebody else's.
    stranger = processes("someone-elses-program")
    (pid_file := tmp_path / "worker-io.pid").write_text(str(stranger.pid))

    done = demo_signal("KILL", "celery", pid_file)

    assert done.returncode == 1
    assert "not the demo's celery; skipped" in done.stderr
    assert stranger.poll() is None  # still running


def test_a_pid_file_of_a_process_that_exited_says_so(processes, tmp_path):
    gone = processes("celery")
    gone.kill()
    gone.wait()
    (pid_file := tmp_path / "worker-io.pid").write_text(str(gone.pid))

    done = demo_signal("KILL", "celery", pid_file)

    assert done.returncode == 1
    # One line per file and a hint, not the shell's own complaint about /proc.
    assert done.stderr.splitlines()[0] == (
        f"demo-signal: {pid_file} names pid {gone.pid}, which has exited; skipped"
    )
    assert "cannot open" not in done.stderr
    assert "try again" in done.stderr


def test_the_demo_writes_the_pid_files_the_make_targets_read():
    procfile = (Path(settings.BASE_DIR) / "Procfile").read_text()
    makefile = (Path(settings.BASE_DIR) / "Makefile").read_text()
    workers = [line for line in procfile.splitlines() if " worker " in line]
    assert workers, "no worker in the Procfile"
    for line in workers:
        assert "--pidfile=var/run/worker-%n.pid" in line, line
    assert "bin/demo-signal KILL celery var/run/worker-*.pid" in makefile
    # The broker's line runs `manage.py embedded_broker`, which writes var/run/broker.pid.
    assert "broker: bin/respawn python manage.py embedded_broker" in procfile
    for signal in ("KILL", "STOP", "CONT"):
        assert f"bin/demo-signal {signal} valkey var/run/broker.pid" in makefile


def test_nothing_in_the_repository_stops_processes_by_name():
    root = Path(settings.BASE_DIR)
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    by_name = re.compile(r"\b(pkill|killall|pgrep)\b")
    this_file = Path(__file__).resolve()
    offenders = [
        name
        for name in tracked
        if (root / name).is_file()
        and (root / name).resolve() != this_file
        and not name.endswith((".png", ".lock"))
        and by_name.search((root / name).read_text(errors="ignore"))
    ]
    assert offenders == []

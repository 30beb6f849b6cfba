"""The demo's broker writes its server's pid where `make kill-broker` and `make broker-down`
look for it (var/run/broker.pid), so that they never have to find it by name, and removes it
when it stops."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from django.conf import settings

from stack.waiting import free_port, wait_until

# The command in a process of its own (it runs until SIGTERM, which only a main thread can
# take), with var/ moved to the test's folder: a running demo's pid file stays untouched.
RUN_COMMAND = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import django
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    settings.VAR_DIR = Path(sys.argv[1])
    call_command("embedded_broker")
    """
)


def test_the_embedded_broker_writes_its_servers_pid_file_and_removes_it(tmp_path):
    command = subprocess.Popen(
        [sys.executable, "-c", RUN_COMMAND, str(tmp_path)],
        cwd=settings.BASE_DIR,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "EMBEDDED_BROKER_PORT": str(free_port()),
        },
    )
    pid_file = tmp_path / "run" / "broker.pid"
    try:
        wait_until(pid_file.exists, timeout=20, message="var/run/broker.pid")
        server_pid = int(pid_file.read_text())
        cmdline = Path(f"/proc/{server_pid}/cmdline").read_bytes().replace(b"\0", b" ")
        assert b"valkey" in cmdline
    finally:
        command.send_signal(signal.SIGTERM)
        command.wait(timeout=20)
    assert not pid_file.exists()

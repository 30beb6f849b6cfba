"""What docker-compose.yml promises each process, read from the file; .ci/compose/run starts
the stack for real and sees it kept (docs/deployment.md)."""

import http.server
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command
from django_celery_beat.schedulers import DatabaseScheduler

from config.beat import Scheduler
from config.celery import app

ROOT = Path(__file__).resolve().parents[2]
SERVICES = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
HEALTHCHECK = ROOT / "bin" / "healthcheck"


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert "".join(number + unit for number, unit in parts) == duration, duration
    return sum(float(number) * units[unit] for number, unit in parts)


def image_healthcheck() -> str:
    [line] = [
        line
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if "CMD [" in line and "healthcheck" in line
    ]
    return line


def test_every_service_has_a_health_check():
    """Its own in the file, or the image's (web), and none for the one-off migrate step."""
    assert "bin/healthcheck" in image_healthcheck()
    checked_by_the_image = {"web"}
    for name, service in SERVICES.items():
        if name == "migrate":
            assert service["healthcheck"] == {"disable": True}
            assert service["restart"] == "no"
        elif name in checked_by_the_image:
            assert "healthcheck" not in service, name
            assert service["image"] == "shop-jobs"
        else:
            assert service["healthcheck"]["test"], name


def test_every_worker_checks_its_own_node():
    for name, service in SERVICES.items():
        if name.startswith("worker-"):
            [hostname] = [arg for arg in service["command"] if arg.startswith("--hostname=")]
            node = hostname.removeprefix("--hostname=").replace("%h", "$$HOSTNAME")
            assert f"inspect ping --destination={node}" in service["healthcheck"]["test"][1]


def test_every_service_stops_in_a_grace_longer_than_the_soft_shutdown():
    for name, service in SERVICES.items():
        grace = seconds(service["stop_grace_period"])
        assert grace > settings.CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT + 10, name


def test_every_port_is_published_on_the_hosts_loopback_only():
    """The stack runs in debug, with the demo's staff password and Flower's demo pair: none of
    it for the network the host is on."""
    published = {name: service["ports"] for name, service in SERVICES.items() if "ports" in service}
    assert set(published) == {"web", "mailpit", "flower"}
    for name, ports in published.items():
        assert all(port.startswith("127.0.0.1:") for port in ports), name


def healthcheck(*args: str) -> int:
    return subprocess.run([sys.executable, str(HEALTHCHECK), *args], timeout=30).returncode


@pytest.fixture
def server_answering():
    """A server on a free loopback port that answers every GET with the status it is told."""
    status = {"code": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status["code"])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def answer(code: int) -> str:
        status["code"] = code
        return str(server.server_address[1])

    yield answer
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("status", "healthy"),
    [(200, True), (301, True), (401, True), (503, True), (500, False), (502, False)],
)
def test_healthcheck_answers_counts_any_answer_but_a_server_error(
    server_answering, status, healthy
):
    port = server_answering(status)
    assert (healthcheck("answers", port, "/api/health") == 0) is healthy


def test_healthcheck_answers_fails_when_nothing_listens():
    with socket.socket() as probe:  # a port just freed: nothing listens there
        probe.bind(("127.0.0.1", 0))
        free = str(probe.getsockname()[1])
    assert healthcheck("answers", free, "/") == 1


def test_healthcheck_fresh_wants_a_recent_touch(tmp_path):
    alive = tmp_path / "alive"
    assert healthcheck("fresh", str(alive), "60") == 1  # never touched
    alive.touch()
    assert healthcheck("fresh", str(alive), "60") == 0
    old = time.time() - 120
    os.utime(alive, (old, old))
    assert healthcheck("fresh", str(alive), "60") == 1


@pytest.mark.django_db
def test_the_relay_touches_its_alive_file_after_each_round(tmp_path):
    alive = tmp_path / "relay.alive"
    call_command("relay_outbox", once=True, alive_file=alive)
    assert alive.exists()
    assert healthcheck("fresh", str(alive), "60") == 0


def test_beat_touches_its_alive_file_at_each_tick(tmp_path, settings, monkeypatch):
    """django-celery-beat's own tick (it reads the database and closes its connections) is
    left out here; a real beat keeps its file fresh in the compose run (.ci/compose/run)."""
    monkeypatch.setattr(DatabaseScheduler, "tick", lambda self, *args, **kwargs: 5.0)
    settings.BEAT_ALIVE_FILE = str(tmp_path / "beat.alive")
    scheduler = Scheduler(app=app, lazy=True)

    assert scheduler.tick() == 5.0
    assert healthcheck("fresh", settings.BEAT_ALIVE_FILE, "60") == 0

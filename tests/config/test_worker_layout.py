"""The Procfile and docker-compose.yml run the workers that settings.JOBS_WORKER_QUEUES lays
out, and every queue a job is declared on has a worker."""

import re
import shlex
from pathlib import Path

import yaml
from django.conf import settings

from config.celery import app

WORKER_QUEUES = settings.JOBS_WORKER_QUEUES

ROOT = Path(__file__).resolve().parents[2]


def queues_of(command: list[str]) -> tuple[str, ...]:
    [option] = [arg for arg in command if arg.startswith("--queues=")]
    return tuple(option.removeprefix("--queues=").split(","))


def pool_of(command: list[str]) -> str:
    [option] = [arg for arg in command if arg.startswith("--pool=")]
    return option.removeprefix("--pool=")


def procfile_workers() -> list[list[str]]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    commands = [shlex.split(line.split(":", 1)[1]) for line in lines if re.match(r"^\w+:", line)]
    return [command for command in commands if "worker" in command and "celery" in command]


def compose_workers() -> list[list[str]]:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return [s["command"] for name, s in services.items() if name.startswith("worker-")]


def test_every_routed_queue_has_exactly_one_worker_in_the_layout():
    laid_out = [queue for queues in WORKER_QUEUES.values() for queue in queues]
    assert sorted(laid_out) == sorted(settings.QUEUES)
    routed = {task.queue_name for task in app.tasks.values() if getattr(task, "queue_name", None)}
    assert routed <= set(laid_out)


def test_the_procfile_and_compose_run_the_layout_on_the_right_pools():
    for workers in (procfile_workers(), compose_workers()):
        assert sorted(queues_of(c) for c in workers) == sorted(WORKER_QUEUES.values())
        pools = {queues_of(c): pool_of(c) for c in workers}
        assert pools[WORKER_QUEUES["media"]] == "prefork"  # CPU-bound: a process per core
        assert pools[WORKER_QUEUES["io"]] == pools[WORKER_QUEUES["crm"]] == "threads"

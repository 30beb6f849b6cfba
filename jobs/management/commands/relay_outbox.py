import signal
import threading
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, close_old_connections

from jobs import metrics, relay


class Command(BaseCommand):
    help = (
        "Publish jobs that are in the ledger but not on the broker (the outbox relay), "
        "every JOBS_RELAY_INTERVAL_SECONDS, until stopped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="One round, then exit.")
        parser.add_argument(
            "--alive-file",
            type=Path,
            help="Touch this file after each round, for a health check (docker-compose.yml).",
        )

    def handle(
        self, *args: Any, once: bool = False, alive_file: Path | None = None, **options: Any
    ) -> None:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        self.stdout.write(f"outbox relay: every {settings.JOBS_RELAY_INTERVAL_SECONDS}s")
        if not once:
            metrics.serve_host_metrics()
        try:
            while not stop.is_set():
                try:
                    published = relay.relay()
                except DatabaseError as exc:
                    self.stderr.write(f"database unavailable, next round: {exc}")
                    close_old_connections()
                    published = 0
                if published:
                    self.stdout.write(f"relayed {published} job(s)")
                if alive_file:
                    alive_file.touch()  # the loop goes round, database or not
                if once:
                    break
                stop.wait(settings.JOBS_RELAY_INTERVAL_SECONDS)
        except KeyboardInterrupt:
            pass

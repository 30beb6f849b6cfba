"""Small helpers shared by the test modules (and the benchmarks: wait_until, free_port)."""

import socket
import time
from collections.abc import Callable
from io import BytesIO

import pytest
from PIL import Image


def wait_until(
    predicate: Callable[[], object],
    *,
    timeout: float = 30,
    interval: float = 0.1,
    message: str = "condition",
) -> object:
    """Poll until predicate() is truthy; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {message}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def png_bytes(size: tuple[int, int] = (300, 200), color: str = "teal") -> bytes:
    buffer = BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()

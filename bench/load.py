"""HTTP load from client processes: each holds one keep-alive connection and sends its
requests back to back (or one every `interval` seconds), timing each from send to last byte.

Clients are processes, not threads, so that eight of them do not queue for one interpreter
lock and add that wait to the latencies they report. Plain `http.client`: what a client
library adds is the same for every variant and would only blur the differences. This module
imports nothing of Django's; the processes start with `spawn`.
"""

import http.client
import json
import multiprocessing
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

UNIQUE = "{unique}"  # in a request body: replaced by a new random token for every request


@dataclass(frozen=True)
class Request:
    path: str
    body: dict
    token: str = ""  # bearer token, if any

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return json.dumps(self.body).encode(), headers


@dataclass(frozen=True)
class Sample:
    at: float  # wall-clock time the request was sent
    latency_ms: float
    status: int


def _client(
    port: int, request: Request, count: int, start_at: float, interval: float
) -> list[Sample]:
    body, headers = request.encoded()
    unique = UNIQUE.encode() in body
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    connection.connect()
    time.sleep(max(0.0, start_at - time.time()))
    samples = []
    next_at = time.monotonic()
    for _ in range(count):
        if interval:
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
        payload = body.replace(UNIQUE.encode(), uuid.uuid4().hex.encode()) if unique else body
        sent_at = time.time()
        started = time.perf_counter()
        connection.request("POST", request.path, body=payload, headers=headers)
        response = connection.getresponse()
        response.read()
        samples.append(Sample(sent_at, (time.perf_counter() - started) * 1000, response.status))
    connection.close()
    return samples


class Load:
    """A pool of client processes, started once and reused for every run."""

    def __init__(self, port: int, clients: int) -> None:
        self.port = port
        self.pool = ProcessPoolExecutor(clients, mp_context=multiprocessing.get_context("spawn"))
        # Start every process now, not during the first timed run.
        list(self.pool.map(time.sleep, [0.2] * clients))

    def run(
        self, requests: list[Request], count_each: int, *, interval: float = 0.0
    ) -> list[Sample]:
        """One client per request template, all starting together; each sends `count_each`."""
        start_at = time.time() + 0.5
        futures = [
            self.pool.submit(_client, self.port, request, count_each, start_at, interval)
            for request in requests
        ]
        return sorted(
            (sample for future in futures for sample in future.result()), key=lambda s: s.at
        )

    def close(self) -> None:
        self.pool.shutdown()

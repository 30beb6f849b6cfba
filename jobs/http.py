"""One place that turns HTTP outcomes into the retry policy's two kinds of error."""

import logging
import re
import threading
from typing import Any

import requests
from django.conf import settings
from urllib3.exceptions import ProtocolError

from jobs.errors import PermanentError, TransientError
from jobs.shutdown import checkpoint

logger = logging.getLogger(__name__)
_local = threading.local()
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def _session() -> requests.Session:
    # A session per thread: connection reuse without sharing one pool across threads.
    session: requests.Session | None = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def _broken_before_an_answer(error: requests.ConnectionError) -> bool:
    """The connection broke after the request went out and before any answer (urllib3's
    "Connection aborted": a reset, or the server closing it), not a connect that failed
    (refused, unreachable), after which there is nothing to send again."""
    return bool(error.args) and isinstance(error.args[0], ProtocolError)


_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    # Seconds in ASCII digits; not str.isdigit(), which passes "²", or float(), which takes
    # "nan" and "1e9".
    return float(value) if _SECONDS.fullmatch(value) else None


def call(
    method: str,
    url: str,
    *,
    json: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    accept_statuses: frozenset[int] = frozenset(),
) -> requests.Response:
    """Send a request; raise TransientError or PermanentError unless it succeeded.

    `accept_statuses` are 4xx answers the caller handles itself (a declined card, say).
    A safe point: a job whose worker is stopping hands itself back here, before the call.
    """
    checkpoint()
    for tries_left in (1, 0):
        try:
            response = _session().request(
                method,
                url,
                json=json,
                headers=headers,
                timeout=settings.THIRD_PARTY_TIMEOUT_SECONDS,
            )
            break
        except requests.Timeout as exc:
            raise TransientError(f"{method} {url} timed out") from exc
        except requests.ConnectionError as exc:
            if tries_left and _broken_before_an_answer(exc):
                # Most often a kept-alive connection that the server closed after its idle
                # timeout just as the request went out on it; but the server may also have
                # died while handling it. urllib3 has dropped that connection: send again, at
                # once, on a new one, rather than a retry of the whole job seconds later. Safe
                # only because every caller's request can be repeated (shop/clients/: an
                # Idempotency-Key, a PUT, an event id), as the job's own retry needs anyway.
                logger.info("%s %s: connection broke before an answer; sent again", method, url)
                continue
            raise TransientError(f"{method} {url} could not connect") from exc
        except requests.exceptions.ChunkedEncodingError as exc:
            # The answer began and broke off (a reset, or fewer bytes than it announced): the
            # server may have acted, so not sent again here; the job retries.
            raise TransientError(f"{method} {url}: the answer broke off") from exc
    if response.ok or response.status_code in accept_statuses:
        return response
    message = f"{method} {url} answered {response.status_code}: {response.text[:200]}"
    if response.status_code in RETRYABLE_STATUSES:
        raise TransientError(message, retry_after=_retry_after(response))
    raise PermanentError(message)

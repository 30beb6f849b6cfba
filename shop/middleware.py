"""Middleware of the web app: request ids for the logs, a body-size limit for uploads, and the
answers to requests no view can serve: a charset nothing can be decoded with, a body Django
refuses to read, the database unavailable. The API answers them in its JSON (docs/api.md,
"Errors"), the pages in plain text; none is a 500.
"""

import codecs
import contextlib
import json
import logging
import uuid
import warnings
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.http import parse_header_parameters

from jobs import log_context

logger = logging.getLogger(__name__)

# What a 503 asks clients to wait before they try again: about what a database restart or
# failover takes.
DATABASE_RETRY_AFTER_SECONDS = 5


def _is_api(path: str) -> bool:
    return path.startswith("/api/")


def refusal(
    request: HttpRequest, status: int, detail: str, headers: dict[str, str] | None = None
) -> HttpResponse:
    """`{"detail": ...}` under /api/, as the contract has it; plain text on the pages."""
    if _is_api(request.path):
        return JsonResponse({"detail": detail}, status=status, headers=headers)
    return HttpResponse(
        detail, status=status, content_type="text/plain; charset=utf-8", headers=headers
    )


def _too_many_fields(request: HttpRequest) -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    return refusal(request, 400, f"The request has more than {limit} fields.")


class UnservableRequests:
    """Answer what stops any view, not the view's own input: a body over
    DATA_UPLOAD_MAX_MEMORY_SIZE (413), more fields than DATA_UPLOAD_MAX_NUMBER_FIELDS or files
    than DATA_UPLOAD_MAX_NUMBER_FILES (400), which Django raises wherever the body is first
    read (the query string is read before every view); and the database unavailable (503 with
    Retry-After).

    Django would answer the first three with its HTML 400 page, and the last with a 500.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, *args: object) -> HttpResponse | None:
        try:
            # The query string is parsed before the view, not wherever it is first read: DRF
            # reads it while it chooses a renderer, and with DEBUG on its error handling then
            # needs the renderer it failed to choose; the 400 became the server's bare 500.
            # (Here, not in __call__: the answer goes out through the security middleware.)
            request.GET  # noqa: B018 - read for its check (cached on the request)
        except TooManyFieldsSent:
            return _too_many_fields(request)
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return refusal(request, 413, f"The request body is larger than {limit} bytes.")
        if isinstance(exception, TooManyFieldsSent):
            return _too_many_fields(request)
        if isinstance(exception, TooManyFilesSent):
            limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
            return refusal(request, 400, f"The request has more than {limit} files.")
        if isinstance(exception, OperationalError | InterfaceError):
            # One line, no traceback: an outage makes one per request. (An OperationalError
            # that is a bug, "no such table", says so here.)
            logger.warning("database unavailable: %s", exception)
            return refusal(
                request,
                503,
                "The database is unavailable; try again in a few seconds.",
                headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
            )
        return None


# Room for the multipart envelope and the other fields around an avatar of the maximum size.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def upload_size_limit(get_response: Callable[[HttpRequest], HttpResponse]):
    """Refuse an upload that is too large by its declared length, before anything reads it.

    Django's upload settings limit what is kept in memory, not what is accepted: without this,
    a 1 GB body is parsed (by the CSRF check, even before the view) and spooled to disk, only
    to be refused afterwards. In production the web server's own body limit comes first; this
    keeps the promise under runserver and gunicorn alone.
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        if _declared_length(request) > settings.AVATAR_MAX_BYTES + MULTIPART_OVERHEAD_BYTES:
            message = f"The upload is larger than {settings.AVATAR_MAX_BYTES // 1024**2} MB."
            if request.path == reverse("api-signup"):  # the one API address with a file
                return JsonResponse({"errors": {"avatar": [message]}}, status=413)
            if _is_api(request.path):
                return JsonResponse({"detail": message}, status=413)
            return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
        return get_response(request)

    return middleware


def _declared_length(request: HttpRequest) -> int:
    if not (request.content_type or "").startswith("multipart/"):
        return 0
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def request_id(get_response: Callable[[HttpRequest], HttpResponse]):
    """Take the caller's X-Request-ID (or make one), keep it for the logs and the jobs this
    request records, and send it back."""

    def middleware(request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        value = given if log_context.ACCEPTABLE_REQUEST_ID.match(given) else uuid.uuid4().hex
        token = log_context.request_id.set(value)
        try:
            response = get_response(request)
        finally:
            log_context.request_id.reset(token)
        response["X-Request-ID"] = value
        return response

    return middleware


# --- WSGI middleware ------------------------------------------------------------------------

# Every byte value: what a query string or a form field may hold.
ANY_BYTES = bytes(range(256))

WSGIApplication = Callable[[dict, Callable], Iterable[bytes]]


def refuse_unusable_charsets(application: WSGIApplication) -> WSGIApplication:
    """Wrap the WSGI application (config/wsgi.py): refuse with 415 a request whose Content-Type
    names a charset Django would decode with but cannot, such as `charset=bz2_codec`.

    Django takes any charset Python's codec registry knows, and decodes the query string with
    it as it builds the request, before any middleware runs; so the refusal comes before.
    """

    def refusing(environ: dict, start_response: Callable) -> Iterable[bytes]:
        _, params = parse_header_parameters(environ.get("CONTENT_TYPE", ""))
        charset = params.get("charset", "")
        if decodable(charset):
            return application(environ, start_response)
        detail = f'The charset "{charset}" cannot be decoded; send UTF-8.'
        if _is_api(environ.get("PATH_INFO", "")):
            body, content_type = json.dumps({"detail": detail}).encode(), "application/json"
        else:
            body, content_type = detail.encode(), "text/plain; charset=utf-8"
        start_response(
            "415 Unsupported Media Type",
            [("Content-Type", content_type), ("Content-Length", str(len(body)))],
        )
        return [body]

    return refusing


def decodable(charset: str) -> bool:
    """Whether Django can decode any bytes with this charset, as it does: the query string
    strictly (falling back to Latin-1 on a UnicodeDecodeError), form fields with replacement.

    A charset Python does not know is fine: Django ignores it. Not so a codec that is no text
    encoding (bz2_codec, base64, rot13: LookupError), nor one that fails on some bytes with
    another error (idna, punycode, undefined: UnicodeError).
    """
    try:
        codecs.lookup(charset)
    except LookupError:
        return True
    try:
        # unicode_escape warns of every backslash it does not know; the answer is the same.
        with warnings.catch_warnings(action="ignore", category=DeprecationWarning):
            ANY_BYTES.decode(charset, "replace")
            with contextlib.suppress(UnicodeDecodeError):  # Django falls back to Latin-1
                ANY_BYTES.decode(charset)
    except (LookupError, UnicodeError):
        return False
    return True

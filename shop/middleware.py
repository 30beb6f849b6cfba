"""Middleware of the web app: request ids for the logs, and a body-size limit for uploads.

Refuse an upload that is too large by its declared length, before anything reads it.

Django's upload settings limit what is kept in memory, not what is accepted: without this, a
1 GB body is parsed (by the CSRF check, even before the view) and spooled to disk, only to
be refused afterwards. In production the web server's own body limit comes first; this keeps
the promise under runserver and gunicorn alone.
"""

import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from jobs import log_context

# Room for the multipart envelope and the other fields around an avatar of the maximum size.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def upload_size_limit(get_response: Callable[[HttpRequest], HttpResponse]):
    def middleware(request: HttpRequest) -> HttpResponse:
        if _declared_length(request) > settings.AVATAR_MAX_BYTES + MULTIPART_OVERHEAD_BYTES:
            message = f"The upload is larger than {settings.AVATAR_MAX_BYTES // 1024**2} MB."
            if request.path.startswith("/api/"):
                return JsonResponse({"errors": {"avatar": [message]}}, status=413)
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

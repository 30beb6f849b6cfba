"""Errors in the shape docs/api.md promises: {"errors": {field: [messages]}} or
{"detail": "..."}.

Nested fields are flattened to one level, with paths as keys (`items[0].quantity`), so that
every value is a list of messages, as the contract says.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

NON_FIELD = "non_field_errors"


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"errors": flatten(response.data)}
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"detail": str(response.data["detail"])}
    return response


def flatten(detail, path: str = "") -> dict[str, list[str]]:
    if isinstance(detail, dict):
        children = {_join(path, key): value for key, value in detail.items()}
    elif isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        children = {f"{path}[{index}]": value for index, value in enumerate(detail) if value}
    else:
        messages = detail if isinstance(detail, list) else [detail]
        return {path or NON_FIELD: [str(message) for message in messages]}
    flat: dict[str, list[str]] = {}
    for child_path, value in children.items():
        for key, messages in flatten(value, child_path).items():
            flat.setdefault(key, []).extend(messages)
    return flat


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):  # DRF keys a list field's errors by the item's index
        return f"{path}[{key}]"
    if key == NON_FIELD:
        return path
    return f"{path}.{key}" if path else key


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 400 (a Host header not in ALLOWED_HOSTS, a request it cannot read) in the
    API's shape for an API path, so that a client always gets JSON there; its HTML page
    elsewhere. The project's handler400 (config/urls.py)."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception)

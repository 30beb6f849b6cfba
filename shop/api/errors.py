"""Errors in the shape api.md promises: {"errors": {field: [messages]}} or {"detail": "..."}."""

from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        detail = response.data
        response.data = {
            "errors": detail if isinstance(detail, dict) else {"non_field_errors": detail}
        }
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"detail": str(response.data["detail"])}
    return response

"""What drf-spectacular cannot work out by itself about this API.

Imported by shop.api.urls, so both extensions are registered before the schema is generated;
and by REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS (AutoSchema).
"""

from drf_spectacular import openapi
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.utils import OpenApiParameter

# shop.middleware.RequestIdMiddleware, on every request. No pattern: a value that is not
# acceptable is not refused but replaced, so the schema must not call it invalid input.
REQUEST_ID_HEADER = OpenApiParameter(
    "X-Request-ID",
    str,
    OpenApiParameter.HEADER,
    description="Your id for this request, for the logs and the jobs it records: 1 to 64 "
    "characters of A-Z a-z 0-9 . _ : - (anything else, or none, gets a new one). The answer's "
    "X-Request-ID header says which.",
)


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's, with what generated clients need to know about every operation.

    - The `X-Request-ID` header, which every operation reads (docs/api.md). It is also what
      lets openapi-python-client (0.29.1) import its module for signup, the one operation with
      two body types: it annotates such a body `| Unset` and imports `Unset` only for an
      optional argument (its issue #1451). tests/integration/test_generated_client.py fails if
      the module does not import.
    - `security: []` on an operation that reads no credentials (the view's
      `authentication_classes = []`: signup, the catalogue, health). drf-spectacular would say
      `[{}]` ("credentials optional") for AllowAny, from which openapi-python-client made those
      operations demand a client with a token. An empty list is the schema's word for public,
      and stays true if a document-wide requirement is ever added.
    - A field marked `schema_is_complete` (shop.api.serializers.PhoneField) keeps the schema it
      declares: drf-spectacular would add its validators' pattern again, and, as it can be
      blank, wrap it all in a `oneOf` with the empty string.
    """

    def _insert_field_validators(self, field, schema):
        if getattr(field, "schema_is_complete", False):
            return
        super()._insert_field_validators(field, schema)

    def get_override_parameters(self):
        return [*super().get_override_parameters(), REQUEST_ID_HEADER]

    def get_auth(self):
        if self._reads_no_credentials():
            return []
        return super().get_auth()

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        # (get_operation leaves an empty list out, so it is put in here.)
        if operation is not None and self._reads_no_credentials():
            operation["security"] = []
        return operation

    def _reads_no_credentials(self) -> bool:
        return not self.view.get_authenticators()


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """`Authorization: Bearer <token>` (shop.authentication), as docs/api.md promises clients."""

    target_class = "shop.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer"}


class ListSerializerBounds(OpenApiSerializerFieldExtension):
    """`many=True` with allow_empty=False, min_length or max_length: minItems and maxItems.

    drf-spectacular leaves them out, so the schema promised that `{"items": []}` and 51 order
    lines were valid orders.
    """

    target_class = "rest_framework.serializers.ListSerializer"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if schema is None or schema.get("type") != "array":
            return schema
        min_items = self.target.min_length or (0 if self.target.allow_empty else 1)
        if min_items:
            schema["minItems"] = min_items
        if self.target.max_length is not None:
            schema["maxItems"] = self.target.max_length
        return schema

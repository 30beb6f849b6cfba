"""What drf-spectacular cannot work out by itself about this API.

Imported by shop.api.urls, so both extensions are registered before the schema is generated.
"""

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)


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

"""drf-spectacular postprocessing hooks (SPECTACULAR_SETTINGS): what the schema says beyond
each view's own declaration, for generated clients and strict validators."""

import copy
from typing import Any

DETAIL = {"$ref": "#/components/schemas/DetailOut"}

# status: (description, whether only an operation with a body can get it)
REFUSALS = {
    "413": ("The body is over its size limit; nothing written.", True),
    "415": ("The body's charset cannot be decoded: send UTF-8. Nothing written.", True),
    "503": (
        "The database is unavailable: send the request again after the seconds of the "
        "Retry-After header.",
        False,
    ),
}


def add_refusals_any_operation_may_answer(result: dict[str, Any], **_: Any) -> dict[str, Any]:
    """The refusals any operation may answer, whatever its view says (docs/api.md, "Errors"):
    undeclared, a generated client returned None for them, or raised."""
    for methods in result["paths"].values():
        for operation in methods.values():
            responses = operation.setdefault("responses", {})
            for status, (description, with_body) in REFUSALS.items():
                if with_body and "requestBody" not in operation:
                    continue
                responses.setdefault(
                    status,
                    {
                        "content": {"application/json": {"schema": DETAIL}},
                        "description": description,
                    },
                )
    return result


def inline_nullable_objects(result: dict[str, Any], **_: Any) -> dict[str, Any]:
    """A nullable nested serializer, written by drf-spectacular as `allOf: [$ref]` beside
    `nullable: true`, becomes the referenced object itself with `nullable`: in OpenAPI 3.0,
    `nullable` adds null only to a `type` in the same schema, so the `$ref` still refused
    null, and so did strict validators and generators (JobOut.progress, null until a job
    reports)."""
    components = result.get("components", {}).get("schemas", {})
    for component in components.values():
        for name, field in component.get("properties", {}).items():
            parts = field.get("allOf", [])
            if field.get("nullable") and len(parts) == 1 and "$ref" in parts[0]:
                target = copy.deepcopy(components[parts[0]["$ref"].rsplit("/", 1)[1]])
                rest = {key: value for key, value in field.items() if key != "allOf"}
                component["properties"][name] = {**target, **rest}
    return result

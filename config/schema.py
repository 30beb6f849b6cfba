"""drf-spectacular postprocessing hooks (SPECTACULAR_SETTINGS): what the schema says beyond
each view's own declaration, for generated clients and strict validators. Here, beside the
settings, because what they describe is the whole project's: its middleware answers these
refusals for every operation, the shop's and the operations API's alike."""

import copy
from collections.abc import Iterator
from typing import Any

# status: (description, whether only an operation with a body can get it, headers)
REFUSALS: dict[str, tuple[str, bool, dict[str, Any]]] = {
    "400": (
        "A query string of more than DATA_UPLOAD_MAX_NUMBER_FIELDS fields, or a body that "
        "cannot be read; nothing written.",
        False,
        {},
    ),
    "413": ("The body is over its size limit; nothing written.", True, {}),
    "415": (
        "A media type the operation does not take, or a charset that cannot be decoded: send "
        "UTF-8 JSON (or what the operation's body lists). Nothing written.",
        True,
        {},
    ),
    "503": (
        "The database is unavailable: send the request again after Retry-After's seconds.",
        False,
        {
            "Retry-After": {
                "schema": {"type": "integer"},
                "description": "Seconds to wait before sending the request again.",
            }
        },
    ),
}


def add_refusals_any_operation_may_answer(result: dict[str, Any], **_: Any) -> dict[str, Any]:
    """The refusals any operation may answer, whatever its view says (docs/api.md, "Errors"):
    undeclared, a generated client returned None for them, or raised. An operation's own
    declaration of a status stands (signup's 413, health's 503)."""
    for methods in result["paths"].values():
        for operation in methods.values():
            responses = operation.setdefault("responses", {})
            for status, (description, with_body, headers) in REFUSALS.items():
                if with_body and "requestBody" not in operation:
                    continue
                response: dict[str, Any] = {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/DetailOut"}}
                    },
                    "description": description,
                }
                if headers:
                    response["headers"] = copy.deepcopy(headers)
                responses.setdefault(status, response)
    return result


def inline_nullable_objects(result: dict[str, Any], **_: Any) -> dict[str, Any]:
    """A nullable nested serializer, written by drf-spectacular as `allOf: [$ref]` beside
    `nullable: true`, becomes the referenced object itself with `nullable` (and the
    component's name as its title): in OpenAPI 3.0, `nullable` adds null only to a `type` in
    the same schema, so the `$ref` still refused null, and so did strict validators and
    generators (JobOut.progress, null until a job reports). Only a component's own
    properties are looked at, which is where the project's serializers put them; a component
    no longer referenced afterwards is dropped."""
    components = result.get("components", {}).get("schemas", {})
    inlined = set()
    for component in components.values():
        for name, field in component.get("properties", {}).items():
            parts = field.get("allOf", [])
            if field.get("nullable") and len(parts) == 1 and "$ref" in parts[0]:
                target_name = parts[0]["$ref"].rsplit("/", 1)[1]
                target = copy.deepcopy(components[target_name])
                rest = {key: value for key, value in field.items() if key != "allOf"}
                component["properties"][name] = {"title": target_name, **target, **rest}
                inlined.add(target_name)
    referenced = set(_refs(result))
    for target_name in inlined:
        if f"#/components/schemas/{target_name}" not in referenced:
            del components[target_name]
    return result


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)

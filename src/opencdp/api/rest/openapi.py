"""OpenAPI descriptions generated from the same field tables that validate requests.

Handlers read their bodies themselves (to answer the spec's exact errors in the spec's order), so FastAPI
cannot infer the shapes; these helpers describe them from the one source of truth instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from opencdp.core.fields import Field, Kind, Model
from opencdp.core.stream.parsing import FLIGHT_TEXT
from opencdp.core.values import MONEY_LIMIT

_STRING = {"type": "string"}
_NONEMPTY = {"type": "string", "minLength": 1}
OBJECT = {"type": "object"}
# Instants from the year 1000 to 9998 (core/values.parse_timestamp): the 48-hour window must stay in range.
_TIMESTAMP = {"type": "string", "format": "date-time", "pattern": r"^(?:[1-8]\d{3}|9[0-8]\d{2}|99[0-8]\d|999[0-8])-",
              "example": "2025-03-07T16:15:11.000Z"}  # fmt: skip
_LINK = {"type": "object", "properties": {"href": {"type": "string", "format": "uri"}}, "readOnly": True}


def _field_schema(spec: Field) -> dict[str, Any]:
    kind = spec.kind
    if kind in (Kind.TIMESTAMP, Kind.DATE, Kind.PAST_DATE):
        return dict(_TIMESTAMP)
    if kind is Kind.MONEY:
        limit = int(MONEY_LIMIT)
        return {"type": "number", "exclusiveMinimum": -limit, "exclusiveMaximum": limit}
    if kind is Kind.QUANTITY:
        return {"type": "integer", "minimum": 0}
    if kind is Kind.ENUM:
        return {"type": "string", "enum": list(spec.choices)}
    if kind in (Kind.CURRENCY, Kind.COUNTRY, Kind.LANGUAGE):
        length = 3 if kind is Kind.CURRENCY else 2
        return {"type": "string", "pattern": f"^[A-Za-z]{{{length}}}$"}
    if kind is Kind.EMPTY_LIST:
        return {"type": "array", "items": _STRING, "maxItems": 0}
    if kind is Kind.EMAILS:
        return {"type": "array", "items": {"type": "string", "format": "email"}}
    if kind is Kind.STRINGS:
        return {"type": "array", "items": _STRING}
    if kind is Kind.IDENTIFIERS:
        identifier = {
            "type": "object",
            "required": ["provider", "id"],
            "properties": {"provider": _NONEMPTY, "id": _NONEMPTY, "expiryDate": _TIMESTAMP},
            "additionalProperties": False,
        }
        return {"type": "array", "items": identifier}
    if kind is Kind.ITEM_LINKS:
        ref = {"type": "object", "properties": {"href": _STRING, "ref": _STRING}}
        return {"type": "object", "properties": {"items": {"type": "array", "items": ref}}}
    if kind is Kind.NAME:
        return {"type": "string", "minLength": 1, "maxLength": 128}
    schema: dict[str, Any] = dict(_STRING)
    if spec.required:
        schema["minLength"] = 1
    if spec.max_length:
        schema["maxLength"] = spec.max_length
    return schema


# A flight of an item, as the Stream API and batches send it (REST shows it and never changes it).
FLIGHT_SEGMENT = {
    "type": "object",
    "properties": {name: {"type": "string"} for name in ("id", "origin", "destination", *FLIGHT_TEXT)},
}

# Read-only attributes a model accepts back unchanged that are shown as values, not links.
_SHOWN = {
    "firstSeen": {**_TIMESTAMP, "readOnly": True},
    "lastSeen": {**_TIMESTAMP, "readOnly": True},
    "flightSegments": {"type": "array", "items": FLIGHT_SEGMENT, "readOnly": True},
}


def schema(model: Model) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "ref": {"type": "string", "format": "uuid", "readOnly": True},
        "href": {"type": "string", "format": "uri", "readOnly": True},
        "createdAt": {**_TIMESTAMP, "readOnly": True},
        "modifiedAt": {**_TIMESTAMP, "readOnly": True},
    }
    properties |= {spec.name: _field_schema(spec) for spec in model.fields}
    properties |= {name: _SHOWN.get(name, _LINK) for name in sorted(model.links) if name not in properties}
    required = [spec.name for spec in model.fields if spec.required]
    return {"title": model.name, "type": "object", "properties": properties, "required": required,
            "additionalProperties": False}  # fmt: skip


EXTENSION = {
    "title": "dataExtension",
    "type": "object",
    "description": (
        "Envelope (read-only) plus up to 100 flat custom pairs whose values are strings, numbers or booleans."
    ),
    "properties": {
        "name": _STRING,
        "key": {"type": "string", "enum": ["default"]},
        "ref": {"type": "string", "format": "uuid", "readOnly": True},
        "href": {"type": "string", "format": "uri", "readOnly": True},
        "createdAt": {**_TIMESTAMP, "readOnly": True},
        "modifiedAt": {**_TIMESTAMP, "readOnly": True},
    },
    "additionalProperties": {"type": ["string", "number", "boolean"]},
}

ERROR = {
    "title": "error",
    "type": "object",
    "properties": {
        "status": {"type": ["integer", "string"]},
        "code": {"type": "integer"},
        "message": _STRING,
        "developerMessage": _STRING,
        "moreInfoUrl": _STRING,
    },
}


_ITEM_LINK = {
    "title": "link",
    "type": "object",
    "required": ["href", "ref"],
    "properties": {"href": {"type": "string", "format": "uri"}, "ref": {"type": "string", "format": "uuid"}},
}


def collection(item: dict[str, Any]) -> dict[str, Any]:
    """A page of items: each the whole resource with `expand=true`, else its link (href and ref)."""
    page_link = {"type": "object", "properties": {"href": _STRING}}
    return {
        "type": "object",
        "properties": {
            "href": _STRING,
            "offset": {"type": "integer"},
            "limit": {"type": "integer"},
            "first": page_link,
            "last": page_link,
            "prev": page_link,
            "next": page_link,
            "items": {"type": "array", "items": {"anyOf": [item, _ITEM_LINK]}},
        },
    }


COMPONENTS: dict[str, dict[str, Any]] = {}


def component(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Register a named schema under `components/schemas` and return the reference to it: a shape used
    in several places is written once (a segment definition's nodes, level by level)."""
    COMPONENTS[name] = schema
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI body of JSON with this schema (requests and responses alike)."""
    return {"content": {"application/json": {"schema": body}}}


def request_body(body: dict[str, Any], *, partial: bool = False, optional: bool = False) -> dict[str, Any]:
    """`openapi_extra` for a route whose handler reads the JSON body itself; `partial` for a PATCH, which
    sends only the fields it changes; `optional` for a body that may be left out."""
    if partial:
        body = {key: value for key, value in body.items() if key != "required"}
    return {"requestBody": {"required": not optional, **json_content(body)}}


def responses(ok: dict[str, Any] | None, *codes: int, created: bool = False, status: int = 200) -> dict[int | str, Any]:
    """The answers a route's own rules give: `ok` with `status` (and 201 when `created`), then errors."""
    described: dict[int | str, Any] = {}
    if ok is not None:
        described[status] = {"description": "OK" if status == 200 else "Accepted", **json_content(ok)}
        if created:
            described[201] = {"description": "Created", **json_content(ok)}
    for code in (401, *codes):
        described[code] = {"description": "Error", **json_content(ERROR)}
    return described


STREAM_ERROR = {
    "title": "streamError",
    "type": "object",
    "properties": {
        "status": {"type": "integer"},
        "version": _STRING,
        "client_key": _STRING,
        "error_msg": _STRING,
        "moreInfo": _STRING,
    },
}

# What the shared machinery can answer on any route, whatever the route itself decides.
_GENERIC = {
    400: "Bad request: a parameter holding a NUL, an unreadable Content-Length, or the route's own checks",
    413: "The body is larger than the route accepts",
    503: "The store is unavailable, or busy past the route's wait; try again",
}


# Every protected operation takes HTTP Basic (client key, API token); audience exports take an OAuth
# bearer token too (`POST /oauth/token`). Declared, so that the API browser's "Authorize" sends them.
SECURITY_SCHEMES = {
    "basicAuth": {"type": "http", "scheme": "basic", "description": "user: client key, password: API token"},
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "a token from POST /oauth/token"},
}
SECURITY: list[dict[str, list[str]]] = [{"basicAuth": []}, {"bearerAuth": []}]


def complete(
    document: dict[str, Any], *, protected: Callable[[str], bool], stream: Callable[[str], bool], bearer: str
) -> None:
    """Make every operation list every status it can answer, each with the error body it answers with,
    and the credentials it takes (`bearer`: the prefix of the paths that also take a bearer token).

    Routes declare what their own rules answer; what the machinery around them answers (the request
    guard, authentication, path lookups, the store being down) is added here from what each operation
    is: its path's prefix, whether it has path parameters, whether it takes a JSON body. FastAPI's own
    422 is dropped: no route answers it (validation errors are the spec's 400s).
    """
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            described = operation.setdefault("responses", {})
            described.pop("422", None)
            error = STREAM_ERROR if stream(path) else ERROR
            codes = set(_GENERIC)
            if protected(path) or stream(path):
                codes.add(401)
            if protected(path):
                operation.setdefault("security", SECURITY[:2] if path.startswith(bearer) else SECURITY[:1])
            if "{" in path:
                codes.add(404)
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                codes.add(415)
            for code in sorted(codes):
                described.setdefault(str(code), {"description": _GENERIC.get(code, "Error"), **json_content(error)})
    components = document.setdefault("components", {})
    schemas = components.get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    components["schemas"] = {**schemas, **COMPONENTS}
    components["securitySchemes"] = SECURITY_SCHEMES
    _link(document)


_ADDRESSED = re.compile(r"/([^/{}]+)/\{([^}]+)\}")


def _link(document: dict[str, Any]) -> None:
    """OpenAPI links from each create (201) to the operations that address what it made by its ref, so a
    client generator, and schemathesis's stateful phase, can follow an order to its items and people.

    A resource lives in the collection its schema's title names (`orderItem` in `orderItems`), or, untitled,
    in the collection it was posted to; an operation addresses the collection before its first path
    parameter (`/v2.1/orders/{order_ref}/contacts` addresses an order)."""
    operations = [(path, op) for path, ops in document.get("paths", {}).items() for op in ops.values()]
    addressing: dict[str, list[tuple[str, str]]] = {}
    for path, operation in operations:
        if (found := _ADDRESSED.search(path)) and "operationId" in operation:
            addressing.setdefault(found.group(1), []).append((operation["operationId"], found.group(2)))
    for path, operation in operations:
        created = operation.get("responses", {}).get("201")
        if created is None:
            continue
        schema = created.get("content", {}).get("application/json", {}).get("schema", {})
        collection = f"{schema['title']}s" if "title" in schema else path.rstrip("/").rsplit("/", 1)[-1]
        for operation_id, parameter in addressing.get(collection, []):
            link = {"operationId": operation_id, "parameters": {parameter: "$response.body#/ref"}}
            created.setdefault("links", {})[operation_id] = link

"""OpenAPI descriptions generated from the same field tables that validate requests.

Handlers read their bodies themselves (to answer the spec's exact errors in the spec's order), so FastAPI
cannot infer the shapes; these helpers describe them from the one source of truth instead.
"""

from __future__ import annotations

from typing import Any

from opencdp.core.fields import Field, Kind, Model

_STRING = {"type": "string"}
_TIMESTAMP = {"type": "string", "format": "date-time", "example": "2025-03-07T16:15:11.000Z"}
_LINK = {"type": "object", "properties": {"href": {"type": "string", "format": "uri"}}, "readOnly": True}


def _field_schema(spec: Field) -> dict[str, Any]:
    kind = spec.kind
    if kind in (Kind.TIMESTAMP, Kind.DATE, Kind.PAST_DATE):
        return dict(_TIMESTAMP)
    if kind is Kind.MONEY:
        return {"type": "number"}
    if kind is Kind.QUANTITY:
        return {"type": "integer", "minimum": 0}
    if kind is Kind.ENUM:
        return {"type": "string", "enum": list(spec.choices)}
    if kind in (Kind.CURRENCY, Kind.COUNTRY, Kind.LANGUAGE):
        length = 3 if kind is Kind.CURRENCY else 2
        return {"type": "string", "pattern": f"^[A-Za-z]{{{length}}}$"}
    if kind in (Kind.EMAILS, Kind.STRINGS, Kind.EMPTY_LIST):
        return {"type": "array", "items": {"type": "string"}}
    if kind is Kind.IDENTIFIERS:
        identifier = {
            "type": "object",
            "required": ["provider", "id"],
            "properties": {"provider": _STRING, "id": _STRING, "expiryDate": _TIMESTAMP},
        }
        return {"type": "array", "items": identifier}
    if kind is Kind.ITEM_LINKS:
        ref = {"type": "object", "properties": {"href": _STRING, "ref": _STRING}}
        return {"type": "object", "properties": {"items": {"type": "array", "items": ref}}}
    if kind is Kind.NAME:
        return {"type": "string", "minLength": 1, "maxLength": 128}
    schema: dict[str, Any] = dict(_STRING)
    if spec.max_length:
        schema["maxLength"] = spec.max_length
    return schema


def schema(model: Model) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "ref": {"type": "string", "format": "uuid", "readOnly": True},
        "href": {"type": "string", "format": "uri", "readOnly": True},
        "createdAt": {**_TIMESTAMP, "readOnly": True},
        "modifiedAt": {**_TIMESTAMP, "readOnly": True},
    }
    properties |= {spec.name: _field_schema(spec) for spec in model.fields}
    properties |= {name: _LINK for name in sorted(model.links) if name not in properties}
    required = [spec.name for spec in model.fields if spec.required]
    return {"title": model.name, "type": "object", "properties": properties, "required": required}


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


def collection(item: dict[str, Any]) -> dict[str, Any]:
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
            "items": {"type": "array", "items": item},
        },
    }


def _json(body: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": body}}}


def request_body(body: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` for a route whose handler reads the JSON body itself."""
    return {"requestBody": {"required": True, **_json(body)}}


def responses(ok: dict[str, Any] | None, *codes: int, created: bool = False) -> dict[int | str, Any]:
    described: dict[int | str, Any] = {}
    if ok is not None:
        described[200] = {"description": "OK", **_json(ok)}
        if created:
            described[201] = {"description": "Created", **_json(ok)}
    for code in (401, *codes):
        described[code] = {"description": "Error", **_json(ERROR)}
    return described

"""JSON Schemas of the bodies that carry a segment definition or an audience export definition, for the
OpenAPI document. They are built from the core's own vocabularies (entities, comparators, measures,
export fields), so the document cannot drift from what the core accepts; the core still checks every
body itself and answers with the path of the first error, which a schema cannot say as well.
"""

from __future__ import annotations

from typing import Any

from opencdp.api.rest import openapi
from opencdp.core.exports.definitions import DAYS, GUEST_FIELDS, ITEM_FIELDS, MAX_FILE_RECORDS, ORDER_FIELDS
from opencdp.core.models import GUEST_TYPES
from opencdp.core.segments.catalogue import ENTITIES, FIXED
from opencdp.core.segments.definition import AGGREGATE_OPS, MAX_DAYS, MAX_DEPTH, MEASURES, ROLES

_STRING = {"type": "string"}
_TIME = {
    "description": "an ISO 8601 timestamp, a date (midnight UTC), or a number of days before the evaluation",
    "anyOf": [
        {"type": "string", "examples": ["2026-01-31", "2026-01-31T09:00:00Z"]},
        {"type": "object", "required": ["daysAgo"], "additionalProperties": False,
         "properties": {"daysAgo": {"type": "integer", "minimum": 0, "maximum": MAX_DAYS}}},
    ],
}  # fmt: skip
_OPS = sorted({op for attribute in FIXED.values() for op in attribute.comparators} | set(AGGREGATE_OPS))
SPELLED_OUT = 3  # levels of nodes the schema spells out (the API takes up to MAX_DEPTH)


def _node(level: int) -> dict[str, Any]:
    """The reference to the schema of a node `level` deep, registered as a component. The schema spells
    out three levels and stops there, though the API takes definitions up to MAX_DEPTH deep: with a
    self-referencing schema, schema-driven generators nest deep enough to meet CPython 3.11's parser
    recursion bug (seen in schemathesis's run), and five spelled-out levels doubled its time."""
    name = "SegmentNode" if level == 1 else f"SegmentNode{level}"
    children = _node(level + 1) if level < SPELLED_OUT else None
    properties: dict[str, Any] = {
        "attr": {"type": "string", "examples": ["guest.country", "order.ext.giftWrap"]},
        "op": {"type": "string", "enum": _OPS},
        "value": {"description": "what the attribute or measure is compared with; absent for isEmpty"},
        "entity": {"type": "string", "enum": [entity for entity in ENTITIES if entity != "guest"]},
        "role": {"type": "string", "enum": list(ROLES)},
        "window": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "lastDays": {"type": "integer", "minimum": 1, "maximum": MAX_DAYS},
                "from": _TIME,
                "to": _TIME,
            },
        },
        "measure": {
            "type": "object",
            "required": ["fn"],
            "additionalProperties": False,
            "properties": {
                "fn": {"type": "string", "enum": list(MEASURES)},
                "attr": _STRING,
                "currency": {"type": "string", "examples": ["EUR"]},
            },
        },
    }
    if children is not None:
        many = {"type": "array", "items": children, "minItems": 1, "maxItems": 100}
        properties.update({"all": many, "any": many, "not": children, "where": children})
    shapes = "{all: [node]}, {any: [node]}, {not: node}, " if children is not None else ""
    where = "where?, " if children is not None else ""
    deeper = (
        ""
        if children is not None
        else f"; the API takes nodes down to {MAX_DEPTH} levels, this schema spells out {SPELLED_OUT}"
    )
    return openapi.component(name, {
        "type": "object",
        "description": f"One of: {shapes}a rule {{attr, op, value?}}, or an entity node {{entity, role?, {where}"
        f"window?, measure?, op?, value?}} (docs/segments-exports.md){deeper}",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": properties,
    })  # fmt: skip


NODE_REF = _node(1)
DEFINITION = {
    "type": "object",
    "description": "Which guests: their types, and a condition (docs/segments-exports.md)",
    "additionalProperties": False,
    "properties": {
        "guestTypes": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": list(GUEST_TYPES)}},
        "match": NODE_REF,
    },
}


def _subset(fields: tuple[str, ...]) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string", "enum": list(fields)}}


_TIME_OF_DAY = {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$", "examples": ["01:00"]}
EXPORT_BODY = {
    "type": "object",
    "required": ["name", "segmentRef"],
    "additionalProperties": False,
    "properties": {
        "name": _STRING,
        "friendlyId": {"type": "string", "pattern": "^[a-z0-9_]{3,64}$"},
        "segmentRef": {"type": "string", "format": "uuid"},
        "type": {"type": "string", "enum": ["full", "delta"]},
        "format": {"type": "string", "enum": ["csv", "ndjson", "parquet"]},
        "csv": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "delimiter": {"type": "string", "enum": [",", "|"]},
                "header": {"type": "boolean"},
                "quoteAll": {"type": "boolean"},
            },
        },
        "output": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "guest": _subset(GUEST_FIELDS),
                "identifiers": {"type": "array", "items": _STRING, "examples": [["CRM_ID"]]},
                "extensions": {"type": "array", "items": _STRING, "examples": [["ext1.loyaltyTier"]]},
                "orders": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "limit": {"type": "integer", "minimum": 1, "maximum": 20},
                        "fields": _subset(ORDER_FIELDS),
                        "itemFields": _subset(ITEM_FIELDS),
                        "extensions": {"type": "boolean"},
                    },
                },
            },
        },
        "schedule": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "type": {"type": "string", "enum": ["instant", "daily", "weekly", "cron"]},
                "time": _TIME_OF_DAY,
                "day": {"type": "string", "enum": list(DAYS)},
                "expression": {"type": "string", "description": "type cron only: 5 fields, UTC (OpenCDP's own)"},
            },
        },
        "maxRecordsPerFile": {"type": "integer", "minimum": 1, "maximum": MAX_FILE_RECORDS},
        "webhook": {
            "type": ["object", "null"],
            "required": ["url"],
            "additionalProperties": False,
            "properties": {"url": {"type": "string", "description": "an http(s) URL"}, "secret": _STRING},
        },
    },
}

"""What any JSON a client sends must satisfy before a rule looks at it: no text a store cannot keep, and
no nesting deeper than every later step (the rules, the stores, rendering) can follow.

PostgreSQL keeps no NUL character, in a text column or in JSONB, and orjson renders at most 254 levels;
a body that breaks either would fail long after it was accepted, or on every later read. Each surface
parses JSON its own way (its own error words for a syntax error) and then calls `check`, so the same
body is refused with the same words by the REST, Stream and Batch APIs and the console.
"""

from __future__ import annotations

from typing import Any

from opencdp.core.errors import InvalidField, InvalidParameter

MAX_DEPTH = 64
NUL = "contains a NUL character, which cannot be stored"
TOO_DEEP = f"nests more than {MAX_DEPTH} levels"


def check(value: Any, raw: bytes | str, path: str = "") -> None:
    """Refuse (400, naming the attribute) a parsed document holding a NUL or nested too deep.

    A NUL can only arrive escaped and nesting needs brackets, so the raw text says cheaply whether the
    document must be walked at all: most never are.
    """
    if isinstance(raw, str):
        suspect = "\\u0000" in raw or raw.count("{") + raw.count("[") > MAX_DEPTH
    else:
        suspect = b"\\u0000" in raw or raw.count(b"{") + raw.count(b"[") > MAX_DEPTH
    if suspect:
        walk(value, path)


def walk(value: Any, path: str = "") -> None:
    """Every string, key and container of a document, without recursion (it may be 1,000 levels deep)."""
    pending: list[tuple[Any, str, int]] = [(value, path, 0)]
    while pending:
        item, where, depth = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise InvalidField(where or "body", NUL)
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise InvalidField(where or "body", TOO_DEEP)
            children: list[tuple[Any, str, int]] = []
            if isinstance(item, dict):
                for key, child in item.items():
                    inner = f"{where}.{key}" if where else key
                    if "\x00" in key:
                        raise InvalidField(inner.replace("\x00", "\\u0000"), NUL)
                    children.append((child, inner, depth + 1))
            else:
                children = [(child, f"{where}[{index}]", depth + 1) for index, child in enumerate(item)]
            pending.extend(reversed(children))  # the first problem in document order is the one reported


def parameter(value: str, name: str) -> None:
    """A single value from a query string or a form: refused when it (or its name) holds a NUL."""
    if "\x00" in value or "\x00" in name:
        raise InvalidParameter(name.replace("\x00", "\\u0000"), NUL)

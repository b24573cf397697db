"""Collections (rest-api.md §3.2–§3.4): paging, sorting and expansion parameters, and the envelope."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from opencdp.api.deps import base_url
from opencdp.core.errors import InvalidParameter
from opencdp.store.rows import SortTerm

COMMON_SORT = frozenset({"createdAt", "modifiedAt"})
SORT_ALIASES = {"created": "createdAt"}
DEFAULT_SORT: tuple[SortTerm, ...] = (("createdAt", False),)
EMBEDDED_LIMIT = 100
_NUMBER = re.compile(r"^\d{1,9}$")


@dataclass(frozen=True)
class Page:
    offset: int = 0
    limit: int = 10
    expand: bool = False
    sort: tuple[SortTerm, ...] = DEFAULT_SORT


def parse_page(request: Request, sortable: Iterable[str] = COMMON_SORT) -> Page:
    params = request.query_params
    limit = _integer(params.get("limit"), "limit", 10)
    if not 10 <= limit <= 100:
        raise InvalidParameter("limit", "must be between 10 and 100")
    offset = _integer(params.get("offset"), "offset", 0)
    expand = False
    for value in params.getlist("expand"):
        if value not in ("true", "false"):
            raise InvalidParameter("expand")
        expand = expand or value == "true"
    return Page(offset, limit, expand, parse_sort(params.get("sort"), frozenset(sortable)))


def _integer(raw: str | None, name: str, default: int) -> int:
    if raw is None:
        return default
    if not _NUMBER.match(raw):
        raise InvalidParameter(name, "must be a non-negative integer")
    return int(raw)


def parse_sort(raw: str | None, sortable: frozenset[str]) -> tuple[SortTerm, ...]:
    if raw is None:
        return DEFAULT_SORT
    terms: list[SortTerm] = []
    for term in raw.split("|"):
        name, sep, direction = term.partition("::")
        name = SORT_ALIASES.get(name, name)
        if name not in sortable or (sep and direction not in ("ASC", "DESC")):
            raise InvalidParameter("sort")
        terms.append((name, direction == "DESC"))
    return tuple(terms)


def envelope(request: Request, page: Page, total: int, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The §3.2 envelope; page hrefs repeat the request's own filters, `expand` and `sort`."""
    path = base_url(request) + request.url.path
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("offset", "limit")]
    return build(path, kept, page.offset, page.limit, total, items)


def embedded(href: str, total: int, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A collection embedded by `expand`: offset 0, limit 100, full items."""
    return build(href, [], 0, EMBEDDED_LIMIT, total, items)


def build(
    path: str,
    params: list[tuple[str, str]],
    offset: int,
    limit: int,
    total: int,
    items: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    def at(position: int) -> dict[str, str]:
        query = urlencode([*params, ("offset", str(position)), ("limit", str(limit))], safe=":|,")
        return {"href": f"{path}?{query}"}

    last = (total - 1) // limit * limit if total else 0
    body: dict[str, Any] = {
        "href": at(offset)["href"],
        "offset": offset,
        "limit": limit,
        "first": at(0),
        "last": at(last),
    }
    if offset > 0:
        body["prev"] = at(max(offset - limit, 0))
    if offset + limit < total:
        body["next"] = at(offset + limit)
    body["items"] = list(items)
    return body


def item_link(full: dict[str, Any], expand: bool) -> dict[str, Any]:
    return full if expand else {"href": full["href"], "ref": full["ref"]}

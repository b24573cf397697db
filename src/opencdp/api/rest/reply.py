"""The few response shapes a REST handler sends."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from opencdp.api.deps import base_url
from opencdp.api.responses import JsonResponse
from opencdp.api.rest.render import Links


def links(request: Request) -> Links:
    return Links(base_url(request))


def ok(body: dict[str, Any]) -> JsonResponse:
    return JsonResponse(body)


def written(body: dict[str, Any], created: bool) -> JsonResponse:
    """201 with Location for a new resource; 200 when the write matched one that already existed."""
    if created:
        return JsonResponse(body, 201, headers={"Location": body["href"]})
    return JsonResponse(body)


def no_content() -> Response:
    return Response(status_code=204)

"""Every failure leaves as the spec's error body; a 5xx carries a correlation id, never a stack trace."""

from __future__ import annotations

import logging
import re
import uuid

from fastapi import FastAPI, Request
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.responses import Response

from opencdp.api.auth import Unauthenticated, protected, unauthorized
from opencdp.api.responses import JsonResponse, error_body
from opencdp.api.ui.templates import error_page
from opencdp.core.errors import ApiError, Unavailable

log = logging.getLogger("opencdp")


def _more_info(request: Request) -> str:
    return str(request.app.state.settings.more_info_url)


def error_response(
    request: Request, status: int, message: str, developer: str, headers: dict[str, str] | None = None
) -> Response:
    if request.url.path.startswith("/ui/") and not request.url.path.startswith("/ui/static/"):
        return error_page(request, status, message)  # the console answers people, not programs
    return JsonResponse(error_body(status, status, message, developer, _more_info(request)), status, headers=headers)


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Unavailable) else None
    return error_response(request, exc.status, exc.message, exc.developer_message, headers)


async def on_http_error(request: Request, exc: Exception) -> Response:
    """Routing failures: 404 for an unknown path, 405 with every method the path really has."""
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if exc.status_code in (404, 405) and protected(path) and request.scope.get("state", {}).get("tenant") is None:
        return unauthorized(_more_info(request))
    if exc.status_code == 405:
        allowed = sorted(_methods_for(request))
        return error_response(
            request,
            405,
            "Method Not Allowed",
            f"Method {request.method} is not supported on {path}.",
            {"Allow": ", ".join(allowed)},
        )
    if exc.status_code == 404:
        return error_response(request, 404, "The specified resource does not exist.", f"No resource at {path}.")
    return error_response(request, exc.status_code, str(exc.detail), str(exc.detail))


def _methods_for(request: Request) -> set[str]:
    """Every method the requested path answers, read from the OpenAPI paths (the app's public route map)."""
    table = getattr(request.app.state, "route_methods", None)
    if table is None:
        table = [
            (re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path)) + "$"), {m.upper() for m in ops})
            for path, ops in request.app.openapi()["paths"].items()
        ]
        request.app.state.route_methods = table
    methods: set[str] = set()
    for pattern, allowed in table:
        if pattern.match(request.url.path):
            methods |= allowed
    if "GET" in methods:
        methods.add("HEAD")
    return methods


async def on_unexpected(request: Request, exc: Exception) -> Response:
    reference = str(uuid.uuid4())
    if isinstance(exc, PoolTimeout):  # every connection of this process busy for the pool's whole timeout
        log.warning("no database connection free (reference %s)", reference)
        developer = f"Every database connection is busy; try again shortly. Reference: {reference}."
        return error_response(request, 503, "Service Unavailable", developer, {"Retry-After": "1"})
    if isinstance(exc, OperationalError | InterfaceError):
        log.error("store unavailable (reference %s): %s", reference, exc)
        developer = f"The store is unavailable. Reference: {reference}."
        return error_response(request, 503, "Service Unavailable", developer, {"Retry-After": "1"})
    log.exception("unexpected failure (reference %s)", reference)
    return error_response(request, 500, "Internal Server Error", f"Unexpected failure. Reference: {reference}.")


async def on_unauthenticated(request: Request, exc: Exception) -> Response:
    return unauthorized(_more_info(request))


def install(app: FastAPI) -> None:
    app.add_exception_handler(Unauthenticated, on_unauthenticated)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)

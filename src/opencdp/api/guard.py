"""The first thing every request meets: a body limit that fits its route, enforced while the body streams
in, and no NUL in its path or query string.

Starlette reads a body whole when a handler asks for it, so a limit checked afterwards comes too late: a
100 MB form would be in memory before any rule saw it. Here a declared `Content-Length` over the limit
is answered 413 at once, and a body sent without one is counted as it arrives and cut off at the limit
with the same 413. A NUL reaches no handler either: PostgreSQL keeps none, so a query parameter holding
one would fail in the store instead of being refused.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opencdp.api import stream
from opencdp.api.errors import error_response
from opencdp.core import json_input
from opencdp.core.errors import ApiError

API_BODY_LIMIT = 1024 * 1024  # REST, Batch allocation, OpenCDP and console bodies: far above any real one
UPLOAD_PREFIX = "/v2/batches/"
UPLOAD_SUFFIX = "/upload"


class BodyTooLarge(ApiError):
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__("Request Entity Too Large", f"The request body exceeds the limit of {limit} bytes.")


class RequestGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @staticmethod
    def limit(path: str) -> int | None:
        """The most a route may be sent: the Stream API's own limit for events, a megabyte for everything
        else. The signed batch upload streams its file to the store and enforces the batch file limit
        itself, after the checks the Batch API orders before it (None: no limit here)."""
        if path.startswith(UPLOAD_PREFIX) and path.endswith(UPLOAD_SUFFIX):
            return None
        if stream.is_stream_path(path):
            return stream.MAX_BODY
        return API_BODY_LIMIT

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit = self.limit(path)
        try:
            _check_url(scope)
            declared = _content_length(scope)
            if limit is not None and declared is not None and declared > limit:
                raise BodyTooLarge(limit)
        except ApiError as error:
            await _refuse(scope, receive, send, error)
            return
        if limit is None:
            await self.app(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


def _check_url(scope: Scope) -> None:
    if "\x00" in scope["path"]:
        raise ApiError("The path contains a NUL character.", "A NUL character (%00) cannot be part of a path.")
    query = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            json_input.parameter(value, name)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers") or ():
        if key == b"content-length":
            if not value.strip().isdigit():
                raise ApiError("Bad Request", "The Content-Length header is not a number.")
            return int(value)
    return None


async def _refuse(scope: Scope, receive: Receive, send: Send, error: ApiError) -> None:
    """The refusal in the shape of the surface the request was for."""
    request = Request(scope, receive)
    if stream.is_stream_path(scope["path"]):
        response = stream.error_reply(request, error.status, error.message)
    else:
        response = error_response(request, error.status, error.message, error.developer_message)
    await response(scope, receive, send)

"""JSON responses serialised with orjson, the only media type the APIs answer with."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_body(
    status: int | str, code: int, message: str, developer_message: str | None, more_info: str
) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status, "code": code, "message": message}
    if developer_message is not None:
        body["developerMessage"] = developer_message
    body["moreInfoUrl"] = more_info
    return body

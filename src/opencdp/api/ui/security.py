"""Who is signed in to the console, and the checks every change passes (segments-exports.md §5).

The session cookie is HttpOnly, SameSite=Strict and scoped to /ui (Secure under HTTPS). Every POST but
the sign-in carries the session's CSRF token; the sign-in form uses a double-submit cookie. A POST whose
Origin names another site is refused whatever it carries.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any, cast
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from starlette.responses import RedirectResponse, Response

from opencdp.api.deps import base_url, form_of, settle
from opencdp.core import console
from opencdp.core.errors import ApiError
from opencdp.core.values import utcnow

COOKIE = "opencdp_session"
LOGIN_COOKIE = "opencdp_login_csrf"


class SignInNeeded(Exception):
    """No live session: the page answers 303 to the sign-in form, which comes back here after."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def safe_next(raw: str | None) -> str:
    """Only local console paths: `next` never sends anyone to another site."""
    if raw and raw.startswith("/ui/") and not raw.startswith("//") and "\\" not in raw and not urlsplit(raw).netloc:
        return raw
    return "/ui/home"


def login_redirect(exc: SignInNeeded) -> Response:
    return RedirectResponse(f"/ui/login?next={quote(exc.next_path, safe='/')}", status_code=303)


def secure(request: Request) -> bool:
    return base_url(request).startswith("https://")


async def current_session(request: Request) -> console.Session:
    raw = request.cookies.get(COOKIE)
    db = request.app.state.db
    session = await db.writing(lambda conn: console.resolve(conn, raw, utcnow())) if raw else None
    if session is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInNeeded(path if request.method == "GET" else "/ui/guests")
    request.state.console = session
    await settle(db, session.tenant.id, request.app.state.settings.stream_read_wait_seconds)
    return cast(Session, session)


def check_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is not None and origin != "null" and origin.rstrip("/") != _own_origin(request):
        raise ApiError("This form was sent from another site.", status=403)


def _own_origin(request: Request) -> str:
    parts = urlsplit(base_url(request))
    return f"{parts.scheme}://{parts.netloc}"


async def checked_form(
    request: Request, session: Annotated[console.Session, Depends(current_session)]
) -> dict[str, str]:
    """The form of a change: same origin and the session's CSRF token, else 403 and nothing changes."""
    check_origin(request)
    form = await form_of(request)
    if not hmac.compare_digest(form.get("csrf", ""), session.csrf):
        raise ApiError("The form's security token is missing or wrong; reload the page and try again.", status=403)
    return form


def set_session_cookie(request: Request, response: Response, raw: str) -> None:
    response.set_cookie(COOKIE, raw, httponly=True, samesite="strict", path="/ui", secure=secure(request),
                        max_age=int(console.ABSOLUTE.total_seconds()))  # fmt: skip


def new_login_token() -> str:
    return secrets.token_urlsafe(32)


def set_login_cookie(request: Request, response: Response, token: str) -> None:
    """The double-submit half of the sign-in form's CSRF token (there is no session to hold it yet)."""
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/ui", secure=secure(request))


Session = Annotated[console.Session, Depends(current_session)]
Form = Annotated[dict[str, Any], Depends(checked_form)]

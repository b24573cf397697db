"""Signing in and out of the console."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from opencdp.api.deps import form_of
from opencdp.api.ui.security import (
    COOKIE,
    LOGIN_COOKIE,
    Form,
    Session,
    check_origin,
    new_login_token,
    safe_next,
    set_login_cookie,
    set_session_cookie,
)
from opencdp.api.ui.templates import page
from opencdp.core import console
from opencdp.core.errors import ApiError
from opencdp.core.values import utcnow

router = APIRouter(include_in_schema=False)


@router.get("/ui")
@router.get("/ui/")
async def home() -> Response:
    return RedirectResponse("/ui/home", status_code=303)


def _form(
    request: Request, next_path: str, status: int = 200, error: str | None = None, client_key: str = ""
) -> Response:
    token = new_login_token()
    response = page(request, "login.html", status, next=next_path, error=error, client_key=client_key, csrf=token)
    set_login_cookie(request, response, token)
    return response


@router.get("/ui/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    return _form(request, safe_next(next))


@router.post("/ui/login")
async def login(request: Request) -> Response:
    check_origin(request)
    form = await form_of(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(form.get("csrf", ""), expected):
        raise ApiError("The sign-in form's security token is missing or wrong; reload the page.", status=403)
    next_path = safe_next(form.get("next"))
    address = request.client.host if request.client else "unknown"
    key, token = form.get("client_key", "").strip(), form.get("api_token", "").strip()
    raw = await request.app.state.db.writing(lambda conn: console.sign_in(conn, key, token, address, utcnow()))
    if raw is None:
        return _form(request, next_path, 401, "The client key or API token was refused: check both and try again.", key)
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(request, response, raw)
    response.delete_cookie(LOGIN_COOKIE, path="/ui")
    return response


@router.post("/ui/logout")
async def logout(request: Request, session: Session, _form: Form) -> Response:
    await request.app.state.db.writing(lambda conn: console.sign_out(conn, session))
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response

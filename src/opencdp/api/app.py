"""The ASGI application: every surface mounted over one database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from opencdp import __version__
from opencdp.api import auth, batch, errors, exports, opencdp, segments, stream, stream_journal
from opencdp.api.auth import BasicAuth
from opencdp.api.guard import RequestGuard
from opencdp.api.responses import JsonResponse
from opencdp.api.rest import extensions, guests, openapi, orders, people
from opencdp.api.stream_brake import StreamBrake
from opencdp.api.ui import guests as ui_guests
from opencdp.api.ui import home as ui_home
from opencdp.api.ui import signin, work
from opencdp.api.ui.security import SignInNeeded, login_redirect
from opencdp.config import Settings
from opencdp.jobs import Jobs, StreamApplier, sweep_sessions
from opencdp.store.database import Database

log = logging.getLogger("opencdp")
UI_STATIC = Path(__file__).parent / "ui" / "static"
SWAGGER_UI = resources.files("fastapi_swagger") / "resources"  # Swagger UI's own files, as that package ships them

DESCRIPTION = """
OpenCDP speaks Sitecore CDP's order-side wire formats (data model 2.1).
Every route except the Stream API, `/docs`, `/openapi.json` and `/healthz` takes HTTP Basic:
user = client key, password = API token.
"""


def create_app(settings: Settings | None = None, db: Database | None = None) -> FastAPI:
    settings = settings or Settings()
    db = db or Database(
        settings.effective_database_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        pool_size=settings.db_pool_size,
    )
    app = FastAPI(
        lifespan=_lifespan,
        title="OpenCDP",
        version=__version__,
        description=DESCRIPTION,
        default_response_class=JsonResponse,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.stream_brake = StreamBrake(db, settings.stream_max_lag_seconds, settings.stream_read_wait_seconds)
    errors.install(app)
    # The Stream API first: routes are matched in order, and its event route is the busiest by far. Its
    # plain routes serve it; its documented ones (on its router) describe it in the OpenAPI schema.
    app.router.routes[:0] = stream.SERVED
    for module in (stream, orders, people, extensions, guests, opencdp, stream_journal, segments, exports, batch):
        app.include_router(module.router)
    for module in (signin, ui_home, ui_guests, work):
        app.include_router(module.router)
    app.mount("/ui/static", StaticFiles(directory=UI_STATIC), name="ui-static")
    app.add_exception_handler(SignInNeeded, lambda _request, exc: login_redirect(exc))
    _mount_docs(app)
    _complete_openapi(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.add_middleware(
        BasicAuth,
        db=db,
        more_info_url=settings.more_info_url,
        cache_seconds=settings.auth_cache_seconds,
        secret_key=settings.secret_key,
    )
    app.add_middleware(RequestGuard)
    if settings.trusted_proxies.strip():  # outermost: the client's address is known before anything else
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The embedded server closes idle sessions itself, so a single `opencdp serve` needs no worker."""
    settings: Settings = app.state.settings
    tasks = []
    if settings.batch_in_process:
        jobs = Jobs(settings, app.state.db, apply_stream=settings.stream_applier == "thread")
        tasks.append(asyncio.create_task(_run_jobs(jobs, settings.batch_poll_seconds)))
    if settings.sweep_seconds:
        tasks.append(asyncio.create_task(_sweep_forever(app.state.db, settings.sweep_seconds)))
    # "process": `opencdp serve` started one beside (cli/main.py)
    applier = StreamApplier(app.state.db) if settings.stream_applier == "thread" else None
    if applier is not None:
        applier.start()
    yield
    for task in tasks:
        task.cancel()
    if applier is not None:
        await anyio.to_thread.run_sync(applier.stop)


async def _run_jobs(jobs: Jobs, idle: float) -> None:
    """The embedded server does its background work itself, on a worker thread, one pass at a time."""
    while True:
        try:
            done = await anyio.to_thread.run_sync(jobs.run_pass)
            busy = done.anything
        except Exception:  # the store may be down; claims lapse and the work is resumed later
            log.exception("background work failed")
            busy = False
        if not busy:
            await asyncio.sleep(idle)


async def _sweep_forever(db: Database, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await anyio.to_thread.run_sync(sweep_sessions, db)
        except Exception:  # a failed sweep is retried at the next tick; the error is logged, not fatal
            log.exception("session sweep failed")


def _complete_openapi(app: FastAPI) -> None:
    """The OpenAPI document, with every status each operation can answer (api/rest/openapi.complete)."""
    generate = app.openapi

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            openapi.complete(
                generate(), protected=auth.protected, stream=stream.is_stream_path, bearer=auth.BEARER_PREFIX
            )
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = document  # type: ignore[method-assign]


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI (5.x, which reads OpenAPI 3.1) from an installed package, so the API browser works on a
    machine with no internet; `/` leads to the console, whose pages link here."""
    app.mount("/docs/static", StaticFiles(directory=str(SWAGGER_UI)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="OpenCDP API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
            swagger_ui_parameters={"persistAuthorization": True, "filter": True, "displayRequestDuration": True},
        )

    @app.get("/", include_in_schema=False)
    async def base() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=303)

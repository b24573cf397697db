"""`opencdp serve`, `opencdp db ...`, `opencdp tenant ...`."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import typer
import uvicorn
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import OperationalError

from opencdp.cli.batch import batch_app
from opencdp.cli.demo import demo_app
from opencdp.cli.remote import print_table
from opencdp.cli.segments import export_app, segment_app
from opencdp.config import Settings
from opencdp.core import bootstrap, tenants
from opencdp.core.batch import links
from opencdp.core.errors import ApiError
from opencdp.jobs import Jobs, StreamApplier
from opencdp.store import migrate
from opencdp.store.database import Database

log = logging.getLogger("opencdp.worker")

app = typer.Typer(help="OpenCDP: a self-hosted customer data platform for orders.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants and their API tokens.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(tenant_app, name="tenant")
app.add_typer(batch_app, name="batch")
app.add_typer(segment_app, name="segment")
app.add_typer(export_app, name="export")
app.add_typer(demo_app, name="demo-data")
console = Console(soft_wrap=True)  # refs, keys and tokens are copied: never wrapped or cut


def _database(settings: Settings) -> Database:
    return Database(settings.effective_database_url, sqlite_synchronous=settings.sqlite_synchronous)


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


@app.command()
def serve(
    host: str = typer.Option(None, help="Interface to listen on (default OPENCDP_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default OPENCDP_PORT or 8080)."),
    workers: int = typer.Option(None, help="Worker processes (default OPENCDP_WORKERS or 1)."),
) -> None:
    """Migrate the database, make sure a tenant exists, and serve every API."""
    settings = Settings()
    bind_host, bind_port = host or settings.host, port or settings.port
    _check_port(bind_host, bind_port)
    try:
        db = _database(settings)
        migrate.upgrade(db)
        with db.write() as conn:
            tenant, token = bootstrap.ensure_default_tenant(conn, settings.client_key, settings.api_token)
            links.secret(conn, settings.secret_key)
        db.dispose()
    except migrate.DatabaseTooNew as error:
        raise _fail(str(error)) from None
    except (OperationalError, OSError) as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[-1]
        raise _fail(f"cannot open the database {_safe(settings)}: {reason}. Check OPENCDP_DATABASE_URL (a "
                    "PostgreSQL database must exist: createdb NAME).") from None  # fmt: skip
    console.print(f"OpenCDP on [bold]http://{bind_host}:{bind_port}[/bold]  (database: {_safe(settings)})")
    console.print(f"  tenant      {tenant.name}")
    console.print(f"  client key  [bold]{tenant.client_key}[/bold]")
    if token:
        console.print(f"  API token   [bold]{token}[/bold]")
    else:
        console.print("  API token   (shown once at creation; `opencdp tenant token-create default` makes another)")
    applier = _start_stream_applier() if settings.stream_applier == "process" else None
    try:
        uvicorn.run(
            "opencdp.asgi:app",
            host=bind_host,
            port=bind_port,
            workers=workers or settings.workers,
            log_level=settings.log_level,
            access_log=False,
            proxy_headers=False,  # the app trusts forwarded headers from OPENCDP_TRUSTED_PROXIES only
        )
    finally:
        if applier is not None:
            applier.terminate()
            applier.wait(timeout=30)


def _start_stream_applier() -> subprocess.Popen[bytes]:
    """The Stream journal's applier, in a process of its own: on a thread of the server it would share
    the request handlers' interpreter lock (on the benchmark, a quarter more CPU per event, and fewer events
    per second; docs/performance.md)."""
    command = [sys.executable, "-m", "opencdp", "stream-applier", "--parent", str(os.getpid())]
    return subprocess.Popen(command)


@app.command("stream-applier", hidden=True)
def stream_applier(parent: int = typer.Option(..., help="The process whose end ends this one.")) -> None:
    """Apply the Stream journal until the `opencdp serve` that started this process ends, however it
    ends (a kill -9 included: this process then belongs to another parent)."""
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s:%(name)s: %(message)s")
    try:
        with StreamApplier(_database(settings)):
            while os.getppid() == parent:
                time.sleep(0.2)
    except KeyboardInterrupt:  # Ctrl-C in the terminal reaches the whole process group
        pass


def _check_port(host: str, port: int) -> None:
    """Fail with one line, before the banner, when the address is taken (uvicorn would say so after it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise _fail(f"cannot listen on {host}:{port} ({error.strerror}): port {port} is in use or not "
                        "allowed; pass --port or set OPENCDP_PORT.") from None  # fmt: skip


def _safe(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.effective_database_url).render_as_string(hide_password=True)


@app.command()
def worker(
    every: float = typer.Option(1.0, help="Seconds to wait when there is nothing to do."),
    once: bool = typer.Option(False, help="Do one pass and exit."),
    heartbeat: Path = typer.Option(
        None,
        help="A file touched after every pass that worked: a health check "
        "for a process that serves no HTTP (see docs/operations.md).",
    ),
) -> None:
    """Background work for deployments of several processes: Stream events from the journal, batch
    imports, segment builds, audience exports and their webhooks, schedules, idle sessions. Any number
    of workers may share one PostgreSQL database; each job is claimed by one worker, and a tenant's
    Stream events are applied by one applier at a time, in order."""
    settings = Settings()
    jobs = Jobs(settings, _database(settings))
    # Stream events are applied as they come, not only once per pass
    with contextlib.nullcontext() if once else StreamApplier(jobs.db):
        while True:
            try:
                closed = jobs.sweep_sessions()
                done = jobs.run_pass()
            except Exception:  # the database may be down or refuse a chunk: claims lapse and the work resumes
                if once:
                    raise
                log.exception("background work failed; trying again in %s s", every)
                time.sleep(every)
                continue
            if heartbeat is not None:
                heartbeat.touch()
            if closed:
                console.print(f"closed {closed} idle sessions")
            for name in ("events", "batches", "builds", "exports", "webhooks"):
                if getattr(done, name):
                    console.print(f"finished {getattr(done, name)} {name}")
            if once:
                return
            if not done.anything:
                time.sleep(every)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database to the current schema version."""
    db = _database(Settings())
    try:
        migrate.upgrade(db)
    except migrate.DatabaseTooNew as error:
        raise _fail(str(error)) from None
    console.print(f"database at revision {migrate.current_revision(db)}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's schema revision and the newest this OpenCDP knows."""
    db = _database(Settings())
    console.print(f"database {migrate.current_revision(db)}, code {migrate.head_revision(db)}")


@tenant_app.command("create")
def tenant_create(
    name: str,
    client_key: str = typer.Option(None, help="Client key to use instead of a generated one."),
) -> None:
    """Create a tenant and print its client key and first API token."""
    db = _database(Settings())
    try:
        with db.write() as conn:
            credentials = tenants.create_tenant(conn, name, client_key=client_key)
    except ApiError as error:
        raise _fail(error.message) from None
    console.print(f"client key  {credentials.tenant.client_key}")
    console.print(f"API token   {credentials.api_token}")


@tenant_app.command("list")
def tenant_list() -> None:
    """List tenants with their client keys and identity rules."""
    db = _database(Settings())
    with db.read() as conn:
        found = tenants.list_tenants(conn)
    table = Table("name", "client key", "identity rules", "session timeout (min)")
    for tenant in found:
        table.add_row(
            tenant.name,
            tenant.client_key,
            ", ".join(tenant.identity_rules),
            str(tenant.session_timeout_minutes),
        )
    print_table(table)


@tenant_app.command("set")
def tenant_set(
    name: str,
    session_timeout: int = typer.Option(None, help="Session inactivity timeout in minutes."),
    currency: str = typer.Option(None, help="Default currency of events that send none."),
    pos: list[str] = typer.Option(None, help="A known point of sale (repeat); `--pos ''` accepts any."),
    context_id: list[str] = typer.Option(None, help="A Cloud SDK context id of this tenant (repeat)."),
    site: list[str] = typer.Option(None, help="SITE_ID=POINT_OF_SALE for the Cloud SDK's siteName (repeat)."),
) -> None:
    """Change a tenant's Stream API settings; what is not given stays as it is."""
    sites = None
    if site:
        pairs = [entry.partition("=") for entry in site]
        if any(not sep or not key for key, sep, _ in pairs):
            raise _fail("--site takes SITE_ID=POINT_OF_SALE")
        sites = {key: value for key, _, value in pairs}
    db = _database(Settings())
    try:
        with db.write() as conn:
            tenant = tenants.configure(
                conn,
                tenants.tenant_named(conn, name),
                session_timeout_minutes=session_timeout,
                default_currency=currency,
                points_of_sale=[p for p in pos if p] if pos else None,
                context_ids=context_id or None,
                sites=sites,
            )
    except ApiError as error:
        raise _fail(f"{error.message} ({error.developer_message})") from None
    console.print(f"session timeout  {tenant.session_timeout_minutes} min, currency {tenant.default_currency}")
    console.print(f"points of sale   {', '.join(tenant.points_of_sale) or '(any)'}")
    console.print(f"context ids      {', '.join(tenant.context_ids) or '(the client key only)'}")
    console.print(f"sites            {', '.join(f'{k}={v}' for k, v in tenant.sites) or '(none)'}")


@tenant_app.command("identity-rules")
def identity_rules(
    name: str,
    providers: list[str] = typer.Argument(None, help="New rules in priority order; none prints the current ones."),
) -> None:
    """Show or set the identifier providers identity resolution tries, in priority order."""
    db = _database(Settings())
    try:
        with db.write() as conn:
            tenant = tenants.tenant_named(conn, name)
            if providers:
                tenants.set_identity_rules(conn, tenant, {"identityRules": providers})
            rules = tenants.identity_rules(conn, tenant)
    except ApiError as error:
        raise _fail(f"{error.message} ({error.developer_message})") from None
    console.print("identity rules  " + ", ".join(rules))


@tenant_app.command("token-create")
def token_create(name: str, label: str = typer.Option("cli", help="What the token is for.")) -> None:
    """Issue another API token for a tenant (rotate without downtime)."""
    db = _database(Settings())
    try:
        with db.write() as conn:
            token_id, token = tenants.create_token(conn, tenants.tenant_named(conn, name), label)
    except ApiError as error:
        raise _fail(error.message) from None
    console.print(f"token id    {token_id}")
    console.print(f"API token   {token}")


@tenant_app.command("token-list")
def token_list(name: str) -> None:
    """List a tenant's tokens (never the tokens themselves: only their ids and labels)."""
    db = _database(Settings())
    try:
        with db.read() as conn:
            found = tenants.list_tokens(conn, tenants.tenant_named(conn, name))
    except ApiError as error:
        raise _fail(error.message) from None
    table = Table("id", "label", "created", "revoked")
    for token in found:
        table.add_row(str(token["id"]), token["label"], str(token["createdAt"]), str(token["revokedAt"] or ""))
    print_table(table)


@tenant_app.command("token-revoke")
def token_revoke(name: str, token_id: int) -> None:
    """Revoke one token; requests with it fail within the auth cache time (OPENCDP_AUTH_CACHE_SECONDS)."""
    db = _database(Settings())
    try:
        with db.write() as conn:
            tenants.revoke_token(conn, tenants.tenant_named(conn, name), token_id)
    except ApiError as error:
        raise _fail(error.message) from None
    console.print(f"token {token_id} revoked")

"""`opencdp batch ...`: a client of the Batch API, for OpenCDP or any server implementing it.

It computes the file's MD5 and size, allocates, uploads to the signed location, and follows the batch
to its end with a progress bar, then prints the statistics and the first lines of the log.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from opencdp.cli.remote import error_message

batch_app = typer.Typer(help="Upload batch files and follow them (Batch API client).", no_args_is_help=True)
console = Console()
FINAL = {"success", "error", "corrupted"}

UrlOption = typer.Option(None, "--url", help="Base URL (default OPENCDP_PUBLIC_URL or http://127.0.0.1:8080).")
KeyOption = typer.Option(None, "--client-key", help="Client key (default OPENCDP_CLIENT_KEY).")
TokenOption = typer.Option(None, "--api-token", help="API token (default OPENCDP_API_TOKEN).")


def _client(url: str | None, key: str | None, token: str | None) -> httpx.Client:
    base = url or os.environ.get("OPENCDP_PUBLIC_URL") or "http://127.0.0.1:8080"
    key, token = key or os.environ.get("OPENCDP_CLIENT_KEY"), token or os.environ.get("OPENCDP_API_TOKEN")
    if not key or not token:
        console.print("[red]error:[/red] a client key and an API token are needed (--client-key, --api-token)")
        raise typer.Exit(1)
    return httpx.Client(base_url=base.rstrip("/"), auth=(key, token), timeout=60)


def _check(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        console.print(f"[red]error {response.status_code}:[/red] {error_message(response)}")
        raise typer.Exit(1)
    return response.json() if response.content else {}


@batch_app.command("upload")
def upload(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A gzipped NDJSON file."),
    wait: bool = typer.Option(False, "--wait", help="Follow the batch until it ends."),
    ref: str = typer.Option(None, help="Batch ref to use (default: a new UUID)."),
    url: str = UrlOption,
    client_key: str = KeyOption,
    api_token: str = TokenOption,
) -> None:
    """Allocate a batch for FILE, upload it, and (with --wait) follow it to its end."""
    data = file.read_bytes()
    digest = hashlib.md5(data, usedforsecurity=False)
    ref = ref or str(uuid.uuid4())
    with _client(url, client_key, api_token) as client:
        batch = _check(client.put(f"/v2/batches/{ref}", json={"checksum": digest.hexdigest(), "size": len(data)}))
        headers = {"Content-Md5": base64.b64encode(digest.digest()).decode(), "Content-Type": "application/gzip"}
        with httpx.Client(timeout=300) as plain:
            _check(plain.put(batch["location"]["href"], content=data, headers=headers))
        console.print(f"batch {ref} uploaded ({len(data):,} bytes)")
        if wait:
            _follow(client, ref)


def _follow(client: httpx.Client, ref: str) -> None:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} records"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("processing", total=None)
        while True:
            status = _check(client.get(f"/v2/batches/inspect/{ref}"))
            progress.update(task, completed=status["statistics"]["totalRecords"], description=status["status"]["code"])
            if status["status"]["code"] in FINAL:
                break
            time.sleep(0.5)
    _report(status)


def _report(status: dict[str, Any]) -> None:
    code = status["status"]["code"]
    color = "green" if code == "success" else "red"
    console.print(
        f"status  [{color}]{code}[/{color}]"
        + (f"  {status['status']['message']}" if "message" in status["status"] else "")
    )
    stats = status.get("statistics") or {}
    table = Table("total", "successful", "failed", "skipped", "run time")
    table.add_row(
        *(f"{stats.get(k, 0):,}" for k in ("totalRecords", "successfulRecords", "failedRecords", "skippedRecords")),
        f"{stats.get('runTimeMs', 0) / 1000:.1f} s",
    )
    console.print(table)
    if "log" in status["status"]:
        log = httpx.get(status["status"]["log"], timeout=60)
        lines = gzip.decompress(log.content).splitlines()
        console.print(f"first of {len(lines)} failed records:")
        for line in lines[:10]:
            entry = orjson.loads(line)
            console.print(f"  {entry['ref']}  {entry['code']}  {entry['message']}")


@batch_app.command("status")
def status(ref: str, url: str = UrlOption, client_key: str = KeyOption, api_token: str = TokenOption) -> None:
    """Show one batch: status, statistics and the first failures."""
    with _client(url, client_key, api_token) as client:
        _report(_check(client.get(f"/v2/batches/inspect/{ref}")))


@batch_app.command("list")
def list_batches(
    status_filter: str = typer.Option(None, "--status", help="Comma list, e.g. success,error."),
    url: str = UrlOption,
    client_key: str = KeyOption,
    api_token: str = TokenOption,
) -> None:
    """The tenant's recent batches, newest first."""
    params = {"status": status_filter} if status_filter else {}
    with _client(url, client_key, api_token) as client:
        found = _check(client.get("/v2/batches/inspect", params={**params, "limit": 100}))
    table = Table("ref", "status", "created")
    for item in found["items"]:
        table.add_row(item["ref"], item["status"], item["createdAt"])
    console.print(table)
    console.print(f"{found['totalCount']} batches")

"""What every command that calls the OpenCDP API shares (segments-exports.md §6): the connection options,
exit codes (0 done, 1 job failed, 2 usage or validation error, 3 HTTP or authentication error), JSON
output, and progress bars that go to stderr and only to a terminal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

out = Console()
err = Console(stderr=True)
JOB_FAILED, INVALID, HTTP_ERROR = 1, 2, 3

UrlOption = typer.Option(None, "--url", help="Server base URL (default OPENCDP_URL or http://127.0.0.1:8080).")
KeyOption = typer.Option(None, "--client-key", help="Client key (default OPENCDP_CLIENT_KEY).")
TokenOption = typer.Option(None, "--token", help="API token (default OPENCDP_API_TOKEN).")
JsonOption = typer.Option(False, "--json", help="Print the API's JSON.")
QuietOption = typer.Option(False, "--quiet", help="No progress bars.")


def error_message(response: httpx.Response) -> str:
    """The `message` of an error body in the spec's shape, else the body as text."""
    try:
        return str(response.json().get("message", response.text))
    except (ValueError, AttributeError):
        return response.text


@dataclass
class Remote:
    client: httpx.Client
    json: bool = False
    quiet: bool = False

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            err.print(f"[red]error:[/red] {error}")
            raise typer.Exit(HTTP_ERROR) from None
        if response.status_code >= 400:
            err.print(f"[red]error {response.status_code}:[/red] {error_message(response)}")
            raise typer.Exit(INVALID if response.status_code == 400 else HTTP_ERROR)
        return response.json() if response.content else {}

    def show(self, body: Any) -> bool:
        """Print the JSON when asked; True if it was printed (so the caller prints nothing else)."""
        if self.json:
            sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")
        return self.json

    @contextmanager
    def progress(self, description: str, total: float | None, unit: str = "") -> Iterator[Progress]:
        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn(f"{{task.completed:,.0f}} {unit}"),
                   TimeElapsedColumn())  # fmt: skip
        disabled = self.quiet or not err.is_terminal
        with Progress(*columns, console=err, transient=True, disable=disabled) as bar:
            bar.add_task(description, total=total)
            yield bar


@contextmanager
def remote(
    url: str | None, key: str | None, token: str | None, json: bool = False, quiet: bool = False
) -> Iterator[Remote]:
    base = url or os.environ.get("OPENCDP_URL") or "http://127.0.0.1:8080"
    key, token = key or os.environ.get("OPENCDP_CLIENT_KEY"), token or os.environ.get("OPENCDP_API_TOKEN")
    if not key or not token:
        err.print("[red]error:[/red] a client key and an API token are needed (--client-key, --token)")
        raise typer.Exit(INVALID)
    with httpx.Client(base_url=base.rstrip("/"), auth=(key, token), timeout=120) as client:
        yield Remote(client, json, quiet)


def read_json(path: Any) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as error:
        err.print(f"[red]error:[/red] {path}: {error}")
        raise typer.Exit(INVALID) from None

"""What every command that calls the OpenCDP API shares (docs/cli.md): the connection options, exit codes
(0 done, 1 the job failed, 2 invalid input, 3 the server refused or could not be reached), errors of one
line that say what to do, JSON output, and progress bars that go to stderr and only to a terminal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import typer
from rich.console import Console
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

# soft_wrap: what users copy (refs, keys, signed links) and error lines are never cut or wrapped
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
JOB_FAILED, INVALID, HTTP_ERROR = 1, 2, 3
DEFAULT_URL = "http://127.0.0.1:8080"

UrlOption = typer.Option(None, "--url", help=f"Server base URL (default OPENCDP_URL, else {DEFAULT_URL}).")
KeyOption = typer.Option(None, "--client-key", help="Client key (default OPENCDP_CLIENT_KEY).")
TokenOption = typer.Option(None, "--token", "--api-token", help="API token (default OPENCDP_API_TOKEN).")
JsonOption = typer.Option(False, "--json", help="Print the API's JSON.")
QuietOption = typer.Option(False, "--quiet", help="No progress bars.")


def fail(code: int, message: str) -> typer.Exit:
    """Print one line of error to stderr; the caller raises what this returns."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


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
    client_key: str = ""

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return answer_of(self.client.base_url, lambda: self.client.request(method, path, **kwargs))

    def show(self, body: Any) -> bool:
        """Print the JSON when asked; True if it was printed (so the caller prints nothing else)."""
        if self.json:
            sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")
        return self.json

    @contextmanager
    def progress(self, description: str, total: float | None, unit: str = "") -> Iterator[Progress]:
        """A bar on stderr: done of total, percent, rate, time elapsed and time left (the last three once
        the total is known and work has been seen to move)."""
        columns = (TextColumn("{task.description}"), BarColumn(), Counted(unit), TaskProgressColumn(), Rate(unit),
                   TimeElapsedColumn(), TimeRemainingColumn())  # fmt: skip
        disabled = self.quiet or not err.is_terminal
        with Progress(*columns, console=err, transient=True, disable=disabled) as bar:
            bar.add_task(description, total=total)
            yield bar


class Counted(ProgressColumn):
    """`done of total unit`, or `done unit` while the total is unknown."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = f" {unit}" if unit else ""

    def render(self, task: Task) -> Text:
        total = f" of {task.total:,.0f}" if task.total is not None else ""
        return Text(f"{task.completed:,.0f}{total}{self.unit}")


class Rate(ProgressColumn):
    """Units per second over the bar's recent updates, blank until there are two of them."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit or "items"

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.0f} {self.unit}/s" if task.speed else "")


def answer_of(base: Any, send: Any) -> Any:
    """A request's JSON answer; any failure is one line and the documented exit code."""
    try:
        response = send()
    except httpx.HTTPError as error:
        reason = str(error) or type(error).__name__
        raise fail(HTTP_ERROR, f"cannot reach OpenCDP at {str(base).rstrip('/')} ({reason}): is it running? "
                               "Pass --url or set OPENCDP_URL.") from None  # fmt: skip
    if response.status_code == 401:
        raise fail(HTTP_ERROR, "the client key or API token was refused (401): check --client-key and --token, or "
                               "OPENCDP_CLIENT_KEY and OPENCDP_API_TOKEN.")  # fmt: skip
    if response.status_code >= 400:
        code = INVALID if response.status_code == 400 else HTTP_ERROR
        raise fail(code, f"{response.status_code}: {error_message(response)}")
    return response.json() if response.content else {}


@contextmanager
def remote(
    url: str | None, key: str | None, token: str | None, json: bool = False, quiet: bool = False
) -> Iterator[Remote]:
    base = url or os.environ.get("OPENCDP_URL") or DEFAULT_URL
    key, token = key or os.environ.get("OPENCDP_CLIENT_KEY"), token or os.environ.get("OPENCDP_API_TOKEN")
    if not key or not token:
        raise fail(INVALID, "a client key and an API token are needed: pass --client-key and --token, or set "
                            "OPENCDP_CLIENT_KEY and OPENCDP_API_TOKEN.")  # fmt: skip
    with httpx.Client(base_url=base.rstrip("/"), auth=(key, token), timeout=120) as client:
        yield Remote(client, json, quiet, key)


def listing(url: str | None, key: str | None, token: str | None, json: bool, path: str,
            params: dict[str, Any] | None = None) -> dict[str, Any] | None:  # fmt: skip
    """A listing's first 100, newest first; None once printed as the API's JSON (`--json`)."""
    with remote(url, key, token, json) as api:
        found: dict[str, Any] = api.call("GET", path, params={"limit": 100, **(params or {})})
        return None if api.show(found) else found


def plural(count: int, noun: str, many: str | None = None) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {many or noun + 's'}"


def print_table(table: Table) -> None:
    """A table at the width its cells need, however narrow the terminal: refs, keys and links are what
    users copy, so they are never cut (a narrow terminal wraps the lines instead)."""
    needed = Measurement.get(out, out.options, table).maximum
    out.print(table, width=max(needed, out.width))


def read_json(path: Any) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except OSError as error:
        raise fail(INVALID, f"cannot read {path}: {error.strerror or error}.") from None
    except orjson.JSONDecodeError as error:
        raise fail(INVALID, f"{path} is not JSON: {error}.") from None


def existing_file(path: Path) -> Path:
    """A file a command reads, or one line of error (exit 2) naming it."""
    if not path.is_file():
        raise fail(INVALID, f"no such file: {path}")
    return path

"""`opencdp batch ...`: a client of the Batch API, for OpenCDP or any server implementing it.

It computes the file's MD5 and size, allocates, uploads to the signed location, and follows the batch
to its end with a progress bar, then prints the statistics and the first lines of the log. It takes the
options and answers with the exit codes every client command does (cli/remote.py).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import typer
from rich.table import Table

from opencdp.cli.remote import (
    INVALID,
    JOB_FAILED,
    JsonOption,
    KeyOption,
    QuietOption,
    Remote,
    TokenOption,
    UrlOption,
    answer_of,
    existing_file,
    fail,
    listing,
    out,
    plural,
    print_table,
    remote,
)

batch_app = typer.Typer(help="Upload batch files and follow them (Batch API client).", no_args_is_help=True)
FINAL = {"success", "error", "corrupted"}


@batch_app.command("upload")
def upload(
    file: Path = typer.Argument(..., help="A gzipped NDJSON file."),
    wait: bool = typer.Option(False, "--wait", help="Follow the batch until it ends; exit 1 unless it succeeds."),
    ref: str = typer.Option(None, help="Batch ref to use (default: a new UUID)."),
    url: str = UrlOption, client_key: str = KeyOption, token: str = TokenOption, json: bool = JsonOption,
    quiet: bool = QuietOption,
) -> None:  # fmt: skip
    """Allocate a batch for FILE, upload it, and (with --wait) follow it to its end."""
    try:
        data = existing_file(file).read_bytes()
    except OSError as error:
        raise fail(INVALID, f"cannot read {file}: {error.strerror or error}.") from None
    digest = hashlib.md5(data, usedforsecurity=False)
    ref = ref or str(uuid.uuid4())
    with remote(url, client_key, token, json, quiet) as api:
        batch = api.call("PUT", f"/v2/batches/{ref}", json={"checksum": digest.hexdigest(), "size": len(data)})
        headers = {"Content-Md5": base64.b64encode(digest.digest()).decode(), "Content-Type": "application/gzip"}
        href = batch["location"]["href"]
        with httpx.Client(timeout=300) as plain:
            answer_of(href, lambda: plain.put(href, content=data, headers=headers))
        if not wait:
            if not api.show(batch):
                out.print(f"batch {ref} uploaded ({len(data):,} bytes)")
            return
        status = _follow(api, ref)
        _report(api, status)
        if status["status"]["code"] != "success":
            raise typer.Exit(JOB_FAILED)


def _follow(api: Remote, ref: str) -> dict[str, Any]:
    """Poll the batch until it ends; the bar's label is the status the server reports, which only moves
    forward (file_uploaded, processing, then the end)."""
    with api.progress("file_uploaded", None, "records") as bar:
        task = bar.tasks[0].id
        while True:
            status = api.call("GET", f"/v2/batches/inspect/{ref}")
            bar.update(task, completed=status["statistics"]["totalRecords"], description=status["status"]["code"])
            if status["status"]["code"] in FINAL:
                return status
            time.sleep(0.5)


def _report(api: Remote, status: dict[str, Any]) -> None:
    """The batch's end: its status, then its records in parts that add up (the API counts a skipped record,
    one already applied by an earlier batch, among the successful ones), then the first failures."""
    if api.show(status):
        return
    code = status["status"]["code"]
    color = "green" if code == "success" else "red"
    message = f"  {status['status']['message']}" if "message" in status["status"] else ""
    out.print(f"batch {status['ref']}  [{color}]{code}[/{color}]{message}", highlight=False)
    stats = status.get("statistics") or {}
    total, successful = stats.get("totalRecords", 0), stats.get("successfulRecords", 0)
    skipped, failed = stats.get("skippedRecords", 0), stats.get("failedRecords", 0)
    out.print(f"{plural(total, 'record')}: {successful - skipped:,} applied, {skipped:,} skipped (already applied), "
              f"{failed:,} failed, in {stats.get('runTimeMs', 0) / 1000:.1f} s", highlight=False)  # fmt: skip
    if "log" in status["status"]:
        log = status["status"]["log"]
        with httpx.Client(timeout=60) as plain:
            response = plain.get(log)
        lines = gzip.decompress(response.content).splitlines() if response.status_code == 200 else []
        out.print(f"first of {plural(len(lines), 'failed record')}:")
        for line in lines[:10]:
            entry = orjson.loads(line)
            out.print(f"  {entry['ref']}  {entry['code']}  {entry['message']}", highlight=False)


@batch_app.command("status")
def status(
    ref: str, url: str = UrlOption, client_key: str = KeyOption, token: str = TokenOption, json: bool = JsonOption
) -> None:
    """Show one batch: status, statistics and the first failures."""
    with remote(url, client_key, token, json) as api:
        _report(api, api.call("GET", f"/v2/batches/inspect/{ref}"))


@batch_app.command("list")
def list_batches(
    status_filter: str = typer.Option(None, "--status", help="Comma list, e.g. success,error."),
    url: str = UrlOption, client_key: str = KeyOption, token: str = TokenOption, json: bool = JsonOption,
) -> None:  # fmt: skip
    """The tenant's recent batches, newest first."""
    found = listing(
        url, client_key, token, json, "/v2/batches/inspect", {"status": status_filter} if status_filter else {}
    )
    if found is None:
        return
    table = Table("ref", "status", "created")
    for item in found["items"]:
        table.add_row(item["ref"], item["status"], item["createdAt"])
    print_table(table)
    out.print(plural(found["totalCount"], "batch", "batches"))

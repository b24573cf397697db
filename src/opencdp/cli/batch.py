"""`opencdp batch ...`: a client of OpenCDP's Batch API.

It computes the file's MD5 and size, allocates, uploads to the signed location, and follows the batch
to its end with a bar over the file's lines as the server reports them read, then prints the statistics
and the first failed records with their line numbers. It takes the options and answers with the exit
codes every client command does (cli/remote.py).
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
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
    ref = ref or str(uuid.uuid4())
    with remote(url, client_key, token, json, quiet) as api:
        batch = send(api, data, ref)
        if not wait:
            if not api.show(batch):
                out.print(f"batch {ref} uploaded ({len(data):,} bytes)")
            return
        if follow(api, ref)["status"]["code"] != "success":
            raise typer.Exit(JOB_FAILED)


def send(api: Remote, data: bytes, ref: str) -> dict[str, Any]:
    """Allocate a batch for these bytes and upload them to its signed location; the allocation."""
    digest = hashlib.md5(data, usedforsecurity=False)
    batch: dict[str, Any] = api.call(
        "PUT", f"/v2/batches/{ref}", json={"checksum": digest.hexdigest(), "size": len(data)}
    )
    headers = {"Content-Md5": base64.b64encode(digest.digest()).decode(), "Content-Type": "application/gzip"}
    href = batch["location"]["href"]
    with httpx.Client(timeout=300) as plain:
        answer_of(href, lambda: plain.put(href, content=data, headers=headers))
    return batch


def follow(api: Remote, ref: str) -> dict[str, Any]:
    """Follow the batch to its end with a bar, report it, and return its final status."""
    status = _follow(api, ref)
    _report(api, status)
    return status


def _follow(api: Remote, ref: str) -> dict[str, Any]:
    """Poll the batch until it ends: the bar is over the file's lines, read and applied (the server counts
    them when it verifies the file), and its label is the status, which only moves forward."""
    with api.progress("file_uploaded", None, "lines") as bar:
        task = bar.tasks[0].id
        while True:
            progress = api.call("GET", f"/opencdp/v1/batches/{ref}/progress")
            bar.update(task, completed=progress["lines"], total=progress["totalLines"], description=progress["status"])
            if progress["status"] in FINAL:
                inspected: dict[str, Any] = api.call("GET", f"/v2/batches/inspect/{ref}")
                return inspected
            time.sleep(0.5)


def _report(api: Remote, status: dict[str, Any]) -> None:
    """The batch's end: its status, then its records in parts that add up (the API counts a skipped record,
    one already applied by an earlier batch, among the successful ones), then the first failures with
    their line numbers."""
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
    if failed:
        page = api.call("GET", f"/opencdp/v1/batches/{status['ref']}/failures", params={"limit": 10})
        counted, listed = plural(page["total"], "failed record"), len(page["items"])
        shown = f"the {counted}" if page["total"] <= listed else f"the first {listed} of {counted}"
        out.print(f"{shown} (the whole log: opencdp batch failures {status['ref']}):", highlight=False)
        for failure in page["items"]:
            out.print(f"  line {failure['line']:,}  {failure['ref']}  {failure['code']}  {failure['message']}",
                      highlight=False)  # fmt: skip


@batch_app.command("status")
def status(
    ref: str, url: str = UrlOption, client_key: str = KeyOption, token: str = TokenOption, json: bool = JsonOption
) -> None:
    """Show one batch: status, statistics and the first failures."""
    with remote(url, client_key, token, json) as api:
        _report(api, api.call("GET", f"/v2/batches/inspect/{ref}"))


@batch_app.command("failures")
def failures(
    ref: str, url: str = UrlOption, client_key: str = KeyOption, token: str = TokenOption, json: bool = JsonOption
) -> None:
    """Every failed record of a batch, in file order: line, ref, code, message."""
    with remote(url, client_key, token, json) as api:
        offset, items = 0, []
        while True:
            page = api.call("GET", f"/opencdp/v1/batches/{ref}/failures", params={"offset": offset, "limit": 100})
            items += page["items"]
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                break
        if api.show(items):
            return
        table = Table("line", "ref", "code", "message")
        for failure in items:
            table.add_row(f"{failure['line']:,}", failure["ref"], failure["code"], failure["message"])
        print_table(table)
        out.print(plural(len(items), "failed record"))


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

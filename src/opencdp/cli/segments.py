"""`opencdp segment ...` and `opencdp export ...`: clients of the segments and audience export APIs."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import typer
from rich.table import Table

from opencdp.cli.remote import (
    JOB_FAILED,
    JsonOption,
    KeyOption,
    QuietOption,
    Remote,
    TokenOption,
    UrlOption,
    listing,
    out,
    plural,
    print_table,
    read_json,
    remote,
)
from opencdp.core.exports.records import csv_line

segment_app = typer.Typer(help="Segments: create, build, list members.", no_args_is_help=True)
export_app = typer.Typer(help="Audience exports: run, list and download files.", no_args_is_help=True)
SEGMENTS = "/opencdp/v1/segments"
EXPORTS = "/opencdp/v1/exports"
FINISHED = ("success", "failed")


def _path(href: str) -> str:
    return urlsplit(href).path


def _wait(api: Remote, href: str, description: str, total_of: Any = None, unit: str = "") -> dict[str, Any]:
    """Poll a build or execution until it ends, with a bar (over `total_of` when it has one)."""
    with api.progress(description, None, unit) as bar:
        task = bar.tasks[0].id
        while True:
            found: dict[str, Any] = api.call("GET", _path(href))
            if total_of is not None:
                done, total = total_of(found)
                bar.update(task, completed=done, total=total or None, description=f"{description} {found['status']}")
            else:
                bar.update(task, description=f"{description} {found['status']}")
            if found["status"] in FINISHED:
                return found
            time.sleep(0.5)


def _estimate(api: Remote, ref: str) -> Any:
    """A build is one SQL statement on the server, so nothing reports how far it has got. The bar is over
    the time the segment's last successful build took, the server's own figure: an estimate, which it
    says, and which waits at 99 % if this build takes longer. None when there was no earlier build."""
    earlier = api.call("GET", f"{SEGMENTS}/{ref}/builds", params={"limit": 100})["items"]
    took = next((b["durationMs"] for b in earlier if b["status"] == "success" and b["durationMs"]), None)
    if took is None:
        return None
    started = time.monotonic()

    def so_far(_: dict[str, Any]) -> tuple[float, float]:
        return min(time.monotonic() - started, took / 1000 * 0.99), took / 1000

    return so_far


@segment_app.command("create")
def segment_create(
    file: Path = typer.Option(..., "--file", help="A definition, or a create body."),
    name: str = typer.Option(None, "--name", help="The segment's name (default: the body's, else FILE's name)."),
    start: bool = typer.Option(False, "--start", help="Make it live at once."),
    url: str = UrlOption, client_key: str = KeyOption, token: str = TokenOption, json: bool = JsonOption,
) -> None:  # fmt: skip
    """Create a segment from FILE; prints its ref."""
    raw = read_json(file)
    body = raw if isinstance(raw, dict) and "definition" in raw else {"definition": raw}
    if name:
        body["name"] = name
    body.setdefault("name", file.stem)
    with remote(url, client_key, token, json) as api:
        created = api.call("POST", SEGMENTS, json=body)
        if start:
            created = api.call("POST", f"{SEGMENTS}/{created['ref']}/start")
        if not api.show(created):
            out.print(created["ref"])


@segment_app.command("list")
def segment_list(
    url: str = UrlOption, client_key: str = KeyOption, token: str = TokenOption, json: bool = JsonOption
) -> None:
    """Segments, newest first, with their last build."""
    found = listing(url, client_key, token, json, SEGMENTS)
    if found is None:
        return
    table = Table("ref", "name", "status", "size", "+added", "-removed", "last build")
    for item in found["items"]:
        last = item.get("lastBuild") or {}
        table.add_row(item["ref"], item["name"], item["status"], str(last.get("size", "")), str(last.get("added", "")),
                      str(last.get("removed", "")), last.get("finishedAt") or "")  # fmt: skip
    print_table(table)


@segment_app.command("validate")
def segment_validate(
    file: Path = typer.Argument(...),
    url: str = UrlOption, client_key: str = KeyOption, token: str = TokenOption,
) -> None:  # fmt: skip
    """Check a definition; exit 2 with the first error's path when it is not valid."""
    raw = read_json(file)
    with remote(url, client_key, token) as api:
        api.call("POST", f"{SEGMENTS}/validate", json={"definition": raw.get("definition", raw)})
    out.print("valid")


@segment_app.command("preview")
def segment_preview(
    file: Path = typer.Argument(...),
    url: str = UrlOption, client_key: str = KeyOption, token: str = TokenOption, json: bool = JsonOption,
) -> None:  # fmt: skip
    """The size of an unsaved definition."""
    raw = read_json(file)
    with remote(url, client_key, token, json) as api:
        found = api.call("POST", f"{SEGMENTS}/preview", json={"definition": raw.get("definition", raw)})
        if not api.show(found):
            out.print(f"{found['size']:,} of {found['totalGuests']:,} guests ({found['percentOfGuests']} %)")


def _transition(ref: str, action: str, url: str | None, key: str | None, token: str | None, json: bool) -> None:
    with remote(url, key, token, json) as api:
        found = api.call("POST", f"{SEGMENTS}/{ref}/{action}")
        if not api.show(found):
            out.print(f"{found['ref']} {found['status']}")


@segment_app.command("start")
def segment_start(ref: str, url: str = UrlOption, client_key: str = KeyOption, token: str = TokenOption,
                  json: bool = JsonOption) -> None:  # fmt: skip
    """Make a segment live (it builds at once and nightly)."""
    _transition(ref, "start", url, client_key, token, json)


@segment_app.command("pause")
def segment_pause(ref: str, url: str = UrlOption, client_key: str = KeyOption, token: str = TokenOption,
                  json: bool = JsonOption) -> None:  # fmt: skip
    """Pause a live segment."""
    _transition(ref, "pause", url, client_key, token, json)


@segment_app.command("build")
def segment_build(
    ref: str,
    wait: bool = typer.Option(False, "--wait", help="Follow the build to its end."),
    url: str = UrlOption, client_key: str = KeyOption, token: str = TokenOption, json: bool = JsonOption,
    quiet: bool = QuietOption,
) -> None:  # fmt: skip
    """Queue a build; with --wait, follow it and print size, added and removed."""
    with remote(url, client_key, token, json, quiet) as api:
        estimate = _estimate(api, ref) if wait else None
        build = api.call("POST", f"{SEGMENTS}/{ref}/build")
        if wait:
            build = _wait(api, build["href"], "build", estimate, "s (estimated from the last build)")
        if api.show(build):
            pass
        elif build["status"] == "success":
            out.print(f"size {build['size']:,}  added {build['added']:,}  removed {build['removed']:,}")
        else:
            out.print(f"build {build['ref']} {build['status']} {build.get('error') or ''}".rstrip())
    if build["status"] == "failed":
        raise typer.Exit(JOB_FAILED)


@segment_app.command("members")
def segment_members(
    ref: str,
    build: str = typer.Option(None, "--build", help="A build ref (default: the latest successful one)."),
    added: bool = typer.Option(False, "--added", help="Only guests added by the build."),
    removed: bool = typer.Option(False, "--removed", help="Only guests removed by the build."),
    fmt: str = typer.Option("ndjson", "--format", help="csv or ndjson."),
    output: Path = typer.Option(None, "-o", "--output", help="Write to this file instead of stdout."),
    url: str = UrlOption, client_key: str = KeyOption, token: str = TokenOption, quiet: bool = QuietOption,
) -> None:  # fmt: skip
    """Every member, page by page, with a bar over the total."""
    if fmt not in ("csv", "ndjson") or (added and removed):
        raise typer.BadParameter("--format is csv or ndjson; --added and --removed exclude each other")
    params: dict[str, Any] = {"expand": "true", "limit": 1000}
    if build:
        params["build"] = build
    if added or removed:
        params["change"] = "added" if added else "removed"
    sink = output.open("wb") if output else sys.stdout.buffer
    columns = ("ref", "guestType", "firstName", "lastName", "email", "country", "firstSeen", "lastSeen")
    try:
        if fmt == "csv":
            sink.write((",".join(columns) + "\n").encode())
        with remote(url, client_key, token, quiet=quiet) as api, api.progress("members", None, "guests") as bar:
            offset = 0
            while True:
                page = api.call("GET", f"{SEGMENTS}/{ref}/members", params={**params, "offset": offset})
                bar.update(bar.tasks[0].id, total=page["total"], advance=len(page["items"]))
                for member in page["items"]:
                    sink.write(_member_line(member, fmt, columns))
                offset += page["limit"]
                if offset >= page["total"]:
                    break
    finally:
        if output:
            sink.close()


def _member_line(member: dict[str, Any], fmt: str, columns: tuple[str, ...]) -> bytes:
    if fmt == "ndjson":
        return orjson.dumps({k: v for k, v in member.items() if k != "href"}) + b"\n"
    return csv_line([member.get(column) for column in columns], ",", False)


@export_app.command("create")
def export_create(
    file: Path = typer.Option(..., "--file", help="The export definition, as POST /opencdp/v1/exports takes it."),
    start: bool = typer.Option(False, "--start", help="Turn its schedule on at once."),
    url: str = UrlOption, client_key: str = KeyOption, token: str = TokenOption, json: bool = JsonOption,
) -> None:  # fmt: skip
    """Create an audience export from FILE; prints its ref and friendlyId."""
    body = read_json(file)
    with remote(url, client_key, token, json) as api:
        created = api.call("POST", EXPORTS, json=body)
        if start:
            created = api.call("POST", f"{EXPORTS}/{created['ref']}/start")
        if not api.show(created):
            out.print(f"{created['ref']} {created['friendlyId']} {created['status']}")


@export_app.command("list")
def export_list(
    url: str = UrlOption, client_key: str = KeyOption, token: str = TokenOption, json: bool = JsonOption
) -> None:
    """Audience exports, with their status, schedule and last run."""
    found = listing(url, client_key, token, json, EXPORTS)
    if found is None:
        return
    table = Table("ref", "friendlyId", "name", "status", "next run", "last run")
    for item in found["items"]:
        last = item.get("lastExecution") or {}
        table.add_row(item["ref"], item["friendlyId"], item["name"], item["status"], item.get("nextRunAt") or "",
                      f"{last.get('status', '')} {last.get('finishedAt') or ''}".strip())  # fmt: skip
    print_table(table)
    out.print(plural(found.get("totalCount", len(found["items"])), "export"))


@export_app.command("show")
def export_show(
    ident: str = typer.Argument(..., help="Ref or friendlyId."),
    url: str = UrlOption, client_key: str = KeyOption, token: str = TokenOption,
) -> None:  # fmt: skip
    """One audience export, as the API answers it (JSON)."""
    with remote(url, client_key, token, json=True) as api:
        api.show(api.call("GET", f"{EXPORTS}/{ident}"))


@export_app.command("run")
def export_run(
    ident: str = typer.Argument(..., help="Ref or friendlyId."),
    build_segment: bool = typer.Option(False, "--build-segment", help="Build the segment first."),
    wait: bool = typer.Option(False, "--wait", help="Follow the run to its end."),
    url: str = UrlOption, client_key: str = KeyOption, token: str = TokenOption, json: bool = JsonOption,
    quiet: bool = QuietOption,
) -> None:  # fmt: skip
    """Run an export now; with --wait, a bar over its progress, then its counters."""
    with remote(url, client_key, token, json, quiet) as api:
        execution = api.call("POST", f"{EXPORTS}/{ident}/run", json={"buildSegment": build_segment})
        if wait:
            execution = _wait(api, execution["href"], "export",
                              lambda e: (e["progress"]["written"], e["progress"]["total"]), "records")  # fmt: skip
        if not api.show(execution):
            out.print(f"{execution['executionRef']} {execution['status']}")
            if execution["status"] in FINISHED:
                names = ("total", "successes", "failures", "successAdd", "successRemove")
                out.print("  ".join(f"{name} {execution[name]:,}" for name in names))
                for line in execution["errorLogs"]:
                    out.print(f"[red]{line}[/red]")
    if execution["status"] == "failed":
        raise typer.Exit(JOB_FAILED)


@export_app.command("files")
def export_files(
    execution_ref: str = typer.Argument(None, help="An execution ref."),
    latest: str = typer.Option(None, "--latest", help="The newest successful run of this export (ref or friendlyId)."),
    download: Path = typer.Option(None, "--download", file_okay=False, help="Fetch every file into this directory."),
    url: str = UrlOption, client_key: str = KeyOption, token: str = TokenOption, json: bool = JsonOption,
    quiet: bool = QuietOption,
) -> None:  # fmt: skip
    """The file listing of a run (signed links); --download fetches the files with a byte bar."""
    if bool(execution_ref) == bool(latest):
        raise typer.BadParameter("give an execution ref or --latest ID")
    path = (f"/v2/audienceExports/definitions/{latest}/latestExport" if latest
            else f"/v2/audienceExports/executions/{execution_ref}/export")  # fmt: skip
    with remote(url, client_key, token, json, quiet) as api:
        listing = api.call("GET", path)
        if not api.show(listing):
            for entry in listing["exports"]:
                out.print(f"{entry.get('deltaAction', 'all'):6} {entry['sizeKB']:>8,} KB  {entry['url']}")
        if download:
            download.mkdir(parents=True, exist_ok=True)
            total = sum(entry["sizeKB"] * 1024 for entry in listing["exports"])
            with api.progress("download", total, "bytes") as bar:
                for entry in listing["exports"]:
                    name = Path(urlsplit(entry["url"]).path).name
                    with (
                        api.client.stream("GET", entry["url"], auth=None) as response,
                        (download / name).open("wb") as sink,
                    ):
                        for chunk in response.iter_bytes():
                            sink.write(chunk)
                            bar.update(bar.tasks[0].id, advance=len(chunk))

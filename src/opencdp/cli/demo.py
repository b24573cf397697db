"""`opencdp demo-data ...`: a batch file of demo orders, or a whole believable tenant loaded into a
running server through its public APIs (the Batch API for two years of history, the Stream API for
today's sessions)."""

from __future__ import annotations

import gzip
import secrets
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import typer

from opencdp.cli.batch import follow, send
from opencdp.cli.remote import (
    JOB_FAILED,
    KeyOption,
    QuietOption,
    Remote,
    TokenOption,
    UrlOption,
    answer_of,
    out,
    plural,
    remote,
)
from opencdp.core.values import utcnow
from opencdp.demo import write_orders
from opencdp.demo_tenant import Visit, generate, visits

demo_app = typer.Typer(help="Generate realistic demo data.", no_args_is_help=True)


@demo_app.command("orders")
def demo_orders(
    count: int = typer.Option(1000, "--count", help="Records to write."),
    file: Path = typer.Option(..., "--out", help="The .gz file to write."),
    bad_share: float = typer.Option(0.0, "--bad-share", help="Share of bad lines, 0 to 1."),
    seed: int = typer.Option(7, help="Same seed, same file."),
    items: int = typer.Option(3, help="Items per retail order."),
) -> None:
    """A gzipped NDJSON batch file of retail and flight orders (order insert records)."""
    truth = write_orders(file, count, bad_share=bad_share, seed=seed, items=items)
    out.print(f"{file}: {truth.orders} orders, {truth.bad} bad lines, {file.stat().st_size:,} bytes")


@demo_app.command("tenant")
def demo_tenant(
    customers: int = typer.Option(1000, "--customers", min=1, max=100_000, help="Customers to make."),
    sessions: int = typer.Option(200, "--sessions", min=0, max=100_000, help="Browsing sessions of today."),
    seed: int = typer.Option(7, help="Same seed and day, same history (sending it again changes nothing)."),
    url: str = UrlOption, client_key: str = KeyOption, token: str = TokenOption, quiet: bool = QuietOption,
) -> None:  # fmt: skip
    """Load a believable tenant into a running server: two years of customers in six countries with
    orders in their currencies (a long tail of repeat buyers, several statuses and channels, flights with
    their travellers), then today's sessions, some ending in an order and some in an abandoned cart."""
    midnight = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)  # the same all day: the same records
    tenant = generate(midnight, customers, seed)
    data = gzip.compress(b"".join(orjson.dumps(record) + b"\n" for record in tenant.records), mtime=0)
    with remote(url, client_key, token, quiet=quiet) as api:
        out.print(f"history: {plural(len(tenant.customers), 'customer')}, {plural(tenant.orders, 'order')}")
        send(api, data, ref := str(uuid.uuid4()))
        if follow(api, ref)["status"]["code"] != "success":
            raise typer.Exit(JOB_FAILED)
        outcomes = _browse(api, list(visits(tenant, sessions, secrets.token_hex(3), seed)))
    done = ", ".join(f"{outcomes[kind]:,} {kind}" for kind in ("bought", "abandoned", "browsed"))
    out.print(f"today: {plural(sessions, 'session')} ({done})")
    out.print(f"open {str(api.client.base_url).rstrip('/')}/ui/ to look around")


def _browse(api: Remote, planned: list[Visit]) -> Counter[str]:
    """Each visit from a browser of its own, event by event through the public Stream API."""
    outcomes: Counter[str] = Counter()
    base = str(api.client.base_url).rstrip("/")
    client_key = api.client_key
    with httpx.Client(base_url=base, timeout=60) as stream, api.progress("sessions", len(planned), "sessions") as bar:
        for visit in planned:
            browser = answer_of(
                base, lambda: stream.get("/v1.2/browser/create.json", params={"client_key": client_key})
            )
            for event in visit.events:
                body: dict[str, Any] = {"browser_id": browser["ref"], "client_key": client_key, "channel": "WEB",
                                        "pos": "shop.example", "language": "EN", "page": "/", **event}  # fmt: skip
                answer_of(base, lambda body=body: stream.post("/v1.2/events", json=body))
            outcomes[visit.outcome] += 1
            bar.update(bar.tasks[0].id, advance=1)
    return outcomes

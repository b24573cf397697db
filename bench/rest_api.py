"""Benchmark: concurrent clients creating orders through the REST API, then reading them back.

Each simulated OMS client creates an order, adds 3 items, a contact and an order extension (6 writes),
then the clients read every order back expanded. A real `opencdp serve` process answers, on SQLite by
default. The floor is the same server answering a constant JSON body (`GET /healthz`) to the same
clients, so the client's own cost on this machine is visible beside the figure.

    .venv/bin/python bench/rest_api.py --clients 16 --orders 3000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

import httpx

from opencdp.testing import running_server

KEY, TOKEN = "ck_bench", "tok_bench"


def order(i: int) -> dict[str, object]:
    return {
        "referenceId": f"BENCH-{uuid.uuid4().hex[:10]}",
        "orderedAt": "2025-03-07T16:15:11Z",
        "currencyCode": "EUR",
        "price": 100 + i % 50,
        "status": "PURCHASED",
        "channel": "WEB",
        "pointOfSale": "bench.example",
    }


ITEM = {"type": "MOBILE", "name": "Phone", "price": 30.6, "currencyCode": "EUR", "quantity": 1}
EXTENSION = {"storeLocation": "London", "totalUnits": 3, "giftWrap": False}


class Recorder:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.failures = 0

    async def call(self, client: httpx.AsyncClient, kind: str, method: str, url: str, **kwargs: object) -> httpx.Response:
        start = time.perf_counter()
        response = await client.request(method, url, **kwargs)
        self.latencies[kind].append(time.perf_counter() - start)
        if response.status_code >= 300:
            self.failures += 1
        return response


async def run_clients(clients: int, work: list[int], job) -> float:  # noqa: ANN001
    queue: asyncio.Queue[int] = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)
    start = time.perf_counter()

    async def worker() -> None:
        while not queue.empty():
            await job(queue.get_nowait())

    await asyncio.gather(*(worker() for _ in range(clients)))
    return time.perf_counter() - start


def summary(name: str, samples: list[float], seconds: float) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    return f"{name:<28} {len(samples) / seconds:>9,.0f} req/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms"


async def bench(base: str, clients: int, orders: int) -> None:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, auth=(KEY, TOKEN), limits=limits, timeout=30) as client:
        floor = Recorder()
        seconds = await run_clients(clients, list(range(orders)), lambda i: floor.call(client, "floor", "GET", "/healthz"))
        print(summary("floor: constant JSON body", floor.latencies["floor"], seconds))

        writes = Recorder()
        refs: list[str] = []

        async def create(i: int) -> None:
            created = await writes.call(client, "create", "POST", "/v2.1/orders", json=order(i))
            ref = created.json()["ref"]
            refs.append(ref)
            for _ in range(3):
                await writes.call(client, "item", "POST", f"/v2.1/orders/{ref}/orderItems", json=ITEM)
            contact = {"firstName": "Bench", "lastName": f"Guest{i}", "emails": [f"guest{i % 500}@bench.example"]}
            await writes.call(client, "contact", "POST", f"/v2.1/orders/{ref}/contacts", json=contact)
            await writes.call(client, "extension", "POST", f"/v2.1/orders/{ref}/extensions/ext", json=EXTENSION)

        seconds = await run_clients(clients, list(range(orders)), create)
        everything = [x for samples in writes.latencies.values() for x in samples]
        print(summary("writes (all kinds)", everything, seconds))
        for kind in ("create", "item", "contact", "extension"):
            print(summary(f"  {kind}", writes.latencies[kind], seconds))
        print(f"{'orders completed':<28} {orders / seconds:>9,.0f} orders/s (6 writes each)")

        reads = Recorder()
        seconds = await run_clients(
            clients, list(range(len(refs))),
            lambda i: reads.call(client, "read", "GET", f"/v2.1/orders/{refs[i]}?expand=true"),
        )  # fmt: skip
        print(summary("read back (expand=true)", reads.latencies["read"], seconds))
        failures = writes.failures + reads.failures + floor.failures
        listed = await client.get("/v2.1/orders", params={"referenceId": "none"})
        print(f"failed requests: {failures}; server still answering: {listed.status_code == 200}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    parser.add_argument("--sqlite-synchronous", default="FULL", choices=["NORMAL", "FULL"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        env = {
            "OPENCDP_CLIENT_KEY": KEY,
            "OPENCDP_API_TOKEN": TOKEN,
            "OPENCDP_SQLITE_SYNCHRONOUS": args.sqlite_synchronous,
            "OPENCDP_LOG_LEVEL": "warning",
        }
        if args.database_url:
            env["OPENCDP_DATABASE_URL"] = args.database_url
        store = args.database_url.split(":", 1)[0] if args.database_url else f"sqlite (synchronous={args.sqlite_synchronous})"
        print(f"{args.clients} clients, {args.orders} orders, {args.workers} server workers, {store}")
        with running_server(env, Path(data), args=("--workers", str(args.workers))) as base:
            asyncio.run(bench(base, args.clients, args.orders))


if __name__ == "__main__":
    main()

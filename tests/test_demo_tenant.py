"""`opencdp demo-data tenant`: a believable tenant, loaded through the public APIs of a running server,
on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from conftest import server_for_a_new_tenant
from opencdp.cli.main import app
from opencdp.demo_tenant import generate, visits
from opencdp.store.database import Database

TODAY = datetime(2026, 12, 6, tzinfo=UTC)


def test_the_history_looks_like_a_shop_s():
    tenant = generate(TODAY, customers=2000, seed=3)
    assert generate(TODAY, customers=2000, seed=3).records == tenant.records  # the same seed and day
    orders = [r["value"] for r in tenant.records if r["schema"] == "order"]
    times = sorted(datetime.fromisoformat(o["orderedAt"]) for o in orders)
    assert times[0] > TODAY - timedelta(days=731) and times[-1] <= TODAY
    assert times[0] < TODAY - timedelta(days=600) and times[-1] > TODAY - timedelta(days=7)  # two years, to today
    per_customer = Counter(len(c.orders) for c in tenant.customers)
    assert 0.4 < per_customer[1] / 2000 < 0.8  # most order once...
    assert sum(n for count, n in per_customer.items() if count >= 5) > 40  # ...a long tail orders often
    assert max(per_customer) >= 15
    for name, least in (("status", 4), ("currencyCode", 3), ("channel", 4)):
        assert len({o[name] for o in orders}) >= least, name
    guests = [r["value"] for r in tenant.records if r["schema"] == "guest"]
    assert len({g["country"] for g in guests}) == 6 and all(g["city"] and g["firstSeen"] for g in guests)
    flights = [o for o in orders if o["orderItems"][0]["type"] == "FLIGHT"]
    assert len(flights) > len(orders) / 10 and all(o["consumers"] for o in flights)
    assert any(len(o["consumers"]) == 2 for o in flights)
    outcomes = Counter(v.outcome for v in visits(tenant, 300, "t"))
    assert min(outcomes[kind] for kind in ("bought", "abandoned", "browsed")) > 30


@pytest.fixture(scope="module")
def server(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with server_for_a_new_tenant(database, tmp_path_factory.mktemp("demo"), "demo") as env:
        yield env


def size(api: httpx.Client, definition: dict[str, Any]) -> int:
    answer = api.post("/opencdp/v1/segments/preview", json={"definition": definition})
    assert answer.status_code == 200, answer.text
    return int(answer.json()["size"])


def test_one_command_loads_a_tenant_to_explore(server):
    loaded = CliRunner().invoke(app, ["demo-data", "tenant", "--customers", "150", "--sessions", "16"], env=server)
    assert loaded.exit_code == 0, loaded.output
    assert "batch" in loaded.output and "success" in loaded.output and "today: 16 sessions" in loaded.output
    auth = (server["OPENCDP_CLIENT_KEY"], server["OPENCDP_API_TOKEN"])
    with httpx.Client(base_url=server["OPENCDP_URL"], auth=auth, timeout=30) as api:
        customers = size(api, {"guestTypes": ["customer"]})
        assert customers >= 150
        recent = size(api, {"match": {"entity": "order", "window": {"lastDays": 90}}})
        assert 0 < recent < customers
        repeat = size(api, {"match": {"entity": "order", "op": "gte", "value": 3}})
        assert 0 < repeat < customers / 2
        assert size(api, {"guestTypes": ["customer"], "match": {"attr": "guest.firstSeen", "op": "isEmpty"}}) == 0
        assert size(api, {"guestTypes": ["traveller"]}) > 0
        flyers = {"entity": "orderItem", "role": "consumer", "where": {"attr": "orderItem.type", "op": "equals",
                                                                       "value": "FLIGHT"}}  # fmt: skip
        assert size(api, {"match": flyers}) > 0
        abandoned = {"attr": "session.cartType", "op": "equals", "value": "ABANDONED"}
        assert size(api, {"match": {"entity": "session", "where": abandoned}}) > 0
        today = datetime.now(UTC).strftime("%Y-%m-%d")  # the history ends at midnight; today's orders came in sessions
        assert size(api, {"match": {"entity": "order", "window": {"from": today}}}) > 0
    again = CliRunner().invoke(app, ["demo-data", "tenant", "--customers", "150", "--sessions", "0"], env=server)
    assert again.exit_code == 0 and " 0 applied, " in again.output, again.output

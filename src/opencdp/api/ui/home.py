"""The console's home page: what the tenant holds and what came in each day, the latest batches, the live
segments with how their size moved, and the Stream API's journal (how far its applier lags)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import Connection
from starlette.responses import Response

from opencdp.api.ui.security import Session
from opencdp.api.ui.templates import count, page, time_chart
from opencdp.core import console
from opencdp.core.batch import batches
from opencdp.core.segments import reads as segment_reads
from opencdp.core.stream import journal
from opencdp.core.values import utcnow

router = APIRouter(include_in_schema=False)
DAYS = 90
RECENT = 5
TREND_BUILDS = 20


@router.get("/ui/home")
async def home_page(request: Request, session: Session) -> Response:
    tenant = session.tenant
    now = utcnow()

    def work(conn: Connection) -> dict[str, Any]:
        _n, recent = batches.inspect_page(conn, tenant, now - timedelta(days=DAYS), [], None, 0, RECENT)
        _n, live = segment_reads.page_segments(conn, tenant.id, "live", None, 0, 50)
        trends = []
        for segment in live:
            _n, builds = segment_reads.page_builds(conn, tenant.id, segment["ref"], 0, TREND_BUILDS)
            done = [b for b in reversed(builds) if b["status"] == "success"]
            sizes = [(b["asOf"], Decimal(b["size"])) for b in done]
            trends.append((segment, done[-1]["size"] if done else None, time_chart(sizes, "guests", count, 280, 90)))
        return {
            "overview": console.overview(conn, tenant, now, DAYS),
            "batches": recent,
            "trends": trends,
            "stream": journal.status(conn, tenant, now),
        }

    found = await request.app.state.db.reading(work)
    overview: console.Overview = found["overview"]
    charts = [
        ("New guests per day", time_chart(overview.new_guests, "guests", count)),
        ("New guests per day who are customers now", time_chart(overview.new_customers, "customers", count)),
        ("Orders per day", time_chart(overview.orders_per_day, "orders", count)),
        *((f"Revenue per day, {currency}", time_chart(series, currency))
          for currency, series in overview.revenue_per_day.items()),
    ]  # fmt: skip
    return page(request, "home.html", days=DAYS, charts=charts, **found)

"""Jinja2 for the console: autoescaped templates, the filters pages share, and small inline SVG charts."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from opencdp.core.values import format_timestamp

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_WORDS = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|_")


def stamp(value: Any) -> str:
    """Times in UTC, to the second: what a person reads (the API keeps milliseconds)."""
    if isinstance(value, datetime):
        return format_timestamp(value)[:19].replace("T", " ")
    return "" if value is None else str(value)


def money(value: Any) -> str:
    if value is None:
        return ""
    return f"{Decimal(str(value)):,.2f}"


def humanise(key: str) -> str:
    """`loyaltyTier` → `Loyalty Tier`, for labels beside the raw key."""
    return " ".join(part.capitalize() for part in _WORDS.sub(" ", key).split())


def display_name(guest: Any) -> str:
    """Full name, else the first email, else "Anonymous" (segments-exports.md §5)."""
    name = " ".join(part for part in (guest.get("firstName"), guest.get("lastName")) if part)
    return name or (guest.get("emails") or ["Anonymous"])[0]


def wire_value(value: Any) -> str:
    """An extension value as the client sent it in JSON: `false`, not Python's `False`; `null` for None."""
    if isinstance(value, bool) or value is None:
        return orjson.dumps(value).decode()
    return str(value)


def count(value: Decimal) -> str:
    return f"{value:,.0f}"


def time_chart(
    points: Sequence[tuple[datetime, Decimal]],
    unit: str,
    shown: Callable[[Decimal], str] = money,
    width: int = 560,
    height: int = 160,
) -> dict[str, Any] | None:
    """Values at their moments as SVG coordinates: x is time (a point sits where its date falls, not at its
    rank), with a tick at each year (or month, for less than a year) and the first and last dates; y runs
    from 0 to the largest value, labelled in `unit` (a currency)."""
    if not points:
        return None
    left, right, top_pad, bottom_pad = 88, 16, 14, 34  # room for "12,345.00 EUR" left of the y axis
    first, last = points[0][0], points[-1][0]
    span = (last - first).total_seconds()
    top = max(value for _at, value in points) or Decimal(1)

    def x_of(at: datetime) -> float:
        share = 0.5 if span == 0 else (at - first).total_seconds() / span
        return left + share * (width - left - right)

    def y_of(value: Decimal) -> float:
        return height - bottom_pad - float(value / top) * (height - top_pad - bottom_pad)

    coords = [(x_of(at), y_of(value)) for at, value in points]
    ticks = [{"x": f"{x_of(at):.1f}", "label": label} for at, label in _ticks(first, last)]
    return {
        "width": width,
        "height": height,
        "left": left,
        "right": width - right,
        "axis_y": height - bottom_pad,
        "line": " ".join(f"{x:.1f},{y:.1f}" for x, y in coords),
        "dots": [
            {"x": f"{x:.1f}", "y": f"{y:.1f}", "label": f"{at:%Y-%m-%d}", "value": f"{shown(value)} {unit}"}
            for (x, y), (at, value) in zip(coords, points, strict=True)
        ],
        "ticks": ticks,
        "dot_r": 3 if len(points) <= 40 else 1.5,  # a day-by-day series of months: dots, not blobs
        "top": f"{shown(top)} {unit}",
        "first": f"{first:%Y-%m-%d}",
        "last": f"{last:%Y-%m-%d}",
        "summary": f"{len(points)} values in {unit} from {first:%Y-%m-%d} to {last:%Y-%m-%d}, the largest {shown(top)}",
    }


def _ticks(first: datetime, last: datetime) -> list[tuple[datetime, str]]:
    """Year starts inside the range when it spans a year or more; otherwise month starts (at most six)."""
    if (last - first).days >= 365:
        return [(first.replace(year=y, month=1, day=1, hour=0, minute=0, second=0, microsecond=0), str(y))
                for y in range(first.year + 1, last.year + 1)]  # fmt: skip
    months = []
    at = first.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while True:
        at = at.replace(year=at.year + at.month // 12, month=at.month % 12 + 1)
        if at > last:
            break
        months.append((at, f"{at:%b %Y}"))
    step = max(1, -(-len(months) // 6))
    return months[::step]


environment = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(("html",), default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters.update(
    stamp=stamp, money=money, humanise=humanise, display_name=display_name, wire_value=wire_value
)


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A full page: the template, the signed-in tenant and CSRF token for the layout, the security headers."""
    session = getattr(request.state, "console", None)
    body = environment.get_template(template).render(request=request, session=session, **context)
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return page(request, "error.html", status, code=status, message=message)

"""Jinja2 for the console: autoescaped templates, the filters pages share, and small inline SVG charts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

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


def chart(points: Sequence[tuple[str, float]], width: int = 560, height: int = 140) -> dict[str, Any] | None:
    """A line chart as SVG coordinates: labels on x in order, values scaled to the height."""
    if len(points) < 1:
        return None
    top = max(value for _label, value in points) or 1.0
    step = (width - 40) / max(len(points) - 1, 1)
    coords = [(20 + i * step, height - 20 - (value / top) * (height - 40)) for i, (_l, value) in enumerate(points)]
    return {
        "width": width,
        "height": height,
        "line": " ".join(f"{x:.1f},{y:.1f}" for x, y in coords),
        "dots": [
            {"x": f"{x:.1f}", "y": f"{y:.1f}", "label": label, "value": value}
            for (x, y), (label, value) in zip(coords, points, strict=True)
        ],
        "top": top,
    }


environment = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(("html",), default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters.update(stamp=stamp, money=money, humanise=humanise, display_name=display_name)


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A full page: the template, the signed-in tenant and CSRF token for the layout, the security headers."""
    session = getattr(request.state, "console", None)
    body = environment.get_template(template).render(request=request, session=session, **context)
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return page(request, "error.html", status, code=status, message=message)

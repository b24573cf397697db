"""Cron schedules in UTC: when the next nightly segment build or scheduled export is due."""

from __future__ import annotations

from datetime import datetime

from cronsim import CronSim, CronSimError

from opencdp.core.errors import ApiError

DEFAULT_SEGMENT_SCHEDULE = "0 0 * * *"


def check_cron(expression: object, field: str) -> str:
    if not isinstance(expression, str) or len(expression.split()) != 5:
        raise ApiError(f"{field}: must be a 5-field cron expression", f"Attribute {field} is invalid (cron).")
    try:
        CronSim(expression, datetime(2000, 1, 1))
    except CronSimError as error:
        raise ApiError(f"{field}: {error}", f"Attribute {field} is invalid ({error}).") from None
    return expression


def next_slot(expression: str, after: datetime) -> datetime:
    """The first slot strictly after `after`: a missed slot is caught up once, then the schedule goes on."""
    return next(CronSim(expression, after.replace(second=0, microsecond=0)))

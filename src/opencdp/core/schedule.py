"""Cron schedules in UTC: when the next nightly segment build or scheduled export is due."""

from __future__ import annotations

from datetime import datetime

from cronsim import CronSim, CronSimError

from opencdp.core.errors import ApiError

DEFAULT_SEGMENT_SCHEDULE = "0 0 * * *"


def cron_problem(expression: object) -> str | None:
    """Why `expression` is not a 5-field cron expression, or None when it is one."""
    if not isinstance(expression, str) or len(expression.split()) != 5:
        return "must be a 5-field cron expression"
    try:
        CronSim(expression, datetime(2000, 1, 1))
    except CronSimError as error:
        return str(error)
    return None


def check_cron(expression: object, field: str) -> str:
    problem = cron_problem(expression)
    if problem is not None:
        why = "cron" if problem.startswith("must be") else problem
        raise ApiError(f"{field}: {problem}", f"Attribute {field} is invalid ({why}).")
    assert isinstance(expression, str)
    return expression


def explain(expression: str) -> str:
    """A checked cron expression in plain words ("At 06:30 on Monday through Friday")."""
    return str(CronSim(expression, datetime(2000, 1, 1)).explain())


def next_slot(expression: str, after: datetime) -> datetime:
    """The first slot strictly after `after`: a missed slot is caught up once, then the schedule goes on."""
    return next(CronSim(expression, after.replace(second=0, microsecond=0)))

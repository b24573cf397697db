"""The Stream journal's brake: a tenant's new events wait while its applier lags too far behind.

Ingest is cheaper than applying, so under a sustained load beyond what the applier can do the journal
would grow without bound, and reads, which wait for it (spec README §4), would wait longer and longer. A
tenant's new events are therefore held back while the oldest of its events still waiting has waited more
than `stream_max_lag_seconds`: the clients slow down to the applier's pace and the lag stays bounded. An
event held back for `stream_read_wait_seconds` is refused with 503 and Retry-After, before anything of it
is written.
"""

from __future__ import annotations

import asyncio
import time

from opencdp.core.errors import Unavailable
from opencdp.core.stream import journal
from opencdp.core.values import utcnow
from opencdp.store.database import Database

RECHECK_SECONDS = 0.05  # how often a process asks how far a tenant's applier lags, and a held event retries


class StreamBrake:
    """One per process: the lag it last read per tenant, read again at most every `RECHECK_SECONDS`."""

    def __init__(self, db: Database, max_lag: float, max_wait: float) -> None:
        self.db = db
        self.max_lag = max_lag
        self.max_wait = max_wait
        self._lags: dict[int, tuple[float, float]] = {}  # tenant id -> (when read, lag in seconds)
        self._reading: set[int] = set()

    async def wait(self, tenant_id: int) -> None:
        """Return once the tenant's applier lags no more than `max_lag` (at once when the brake is off)."""
        if self.max_lag <= 0:
            return
        ends = time.monotonic() + self.max_wait
        while await self._lag(tenant_id) > self.max_lag:
            if time.monotonic() >= ends:
                behind = (f"Stream events are being applied more than {self.max_lag:g} s behind; this one waited "
                          f"{self.max_wait:g} s to be accepted. Try again later.")  # fmt: skip
                raise Unavailable(behind, behind)
            await asyncio.sleep(RECHECK_SECONDS)

    async def _lag(self, tenant_id: int) -> float:
        read_at, lag = self._lags.get(tenant_id, (-RECHECK_SECONDS, 0.0))
        if time.monotonic() - read_at < RECHECK_SECONDS or tenant_id in self._reading:
            return lag
        self._reading.add(tenant_id)
        try:
            lag = await self.db.peeking(lambda conn: journal.lag_seconds(conn, tenant_id, utcnow()))
        finally:
            self._reading.discard(tenant_id)
        self._lags[tenant_id] = (time.monotonic(), lag)
        return lag

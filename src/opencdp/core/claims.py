"""Queued jobs taken by whichever worker claims them first, under a lease another worker may take over."""

from __future__ import annotations

import uuid
from datetime import timedelta

from opencdp.store.database import Database


class JobRunner:
    """Runs one kind of queued job until none is left; any number of runners may share one database."""

    kind = "worker"

    def __init__(self, db: Database, lease_seconds: int = 600) -> None:
        self.db = db
        self.lease = timedelta(seconds=lease_seconds)
        self.worker = f"{self.kind}-{uuid.uuid4().hex[:12]}"

    def run_available(self) -> int:
        done = 0
        while self.run_next():
            done += 1
        return done

    def run_next(self) -> bool:
        """Claim and run one job; False when there was none."""
        raise NotImplementedError

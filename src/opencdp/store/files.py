"""The file store: uploaded batch files and batch logs, in a local directory.

Files are written to a temporary name and renamed into place, so a reader never sees half a file and a
crash mid-upload leaves nothing behind under the final name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, kind: str, tenant_id: int, ref: str) -> Path:
        return self.root / kind / str(tenant_id) / f"{ref}.gz"

    @contextmanager
    def writer(self, kind: str, tenant_id: int, ref: str) -> Iterator[BinaryIO]:
        """Write a file whole or not at all: it appears under its name only if the block succeeds."""
        target = self.path(kind, tenant_id, ref)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as out:
                yield out
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def exists(self, kind: str, tenant_id: int, ref: str) -> bool:
        return self.path(kind, tenant_id, ref).exists()

    def delete(self, kind: str, tenant_id: int, ref: str) -> None:
        self.path(kind, tenant_id, ref).unlink(missing_ok=True)

"""The file store: uploaded batch files, batch logs and export files, by key (`uploads/7/<ref>.gz`,
`exports/<executionRef>/<name>`), in a local directory or an S3-compatible bucket (store/s3_files.py).

Every process of a deployment opens the same store from the same setting, `OPENCDP_FILE_STORE`, so a
file written by one machine is read by another. Readers and writers are streams: nothing is held whole.
A writer's file appears under its key only once the writer has finished, so a reader never sees half a
file and a crash mid-write leaves nothing behind under that key.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO, Protocol


class FileStore(Protocol):
    # Whether clients can be sent to the store itself, with presigned links to put and get files.
    takes_direct_uploads: bool

    def writer(self, key: str) -> AbstractContextManager[BinaryIO]: ...

    def reader(self, key: str) -> AbstractContextManager[BinaryIO]:
        """The file as a stream; FileNotFoundError when there is none."""
        ...

    def size(self, key: str) -> int | None: ...

    def md5(self, key: str) -> str | None:
        """The MD5 of a file uploaded straight to the store, where the store knows it (S3's ETag)."""
        ...

    def rename(self, source: str, target: str) -> None: ...

    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> None: ...

    def download_url(self, key: str, expires_in: int, filename: str) -> str | None:
        """A link that fetches the file from the store itself, or None: OpenCDP serves it."""
        ...

    def upload_url(self, key: str, md5_base64: str, expires_in: int) -> str | None:
        """A link that puts exactly these bytes into the store itself, or None: OpenCDP receives them."""
        ...


def chunks(store: FileStore, key: str, size: int = 64 * 1024) -> Iterator[bytes]:
    """A stored file as the chunks a response sends (Starlette iterates it on a worker thread)."""
    with store.reader(key) as stream:
        while chunk := stream.read(size):
            yield chunk


def batch_key(kind: str, tenant_id: int, ref: str) -> str:
    """A batch's upload (`uploads`), the upload still being received (`incoming`), or its log (`logs`)."""
    return f"{kind}/{tenant_id}/{ref}.gz"


def export_prefix(execution_ref: str) -> str:
    return f"exports/{execution_ref}/"


class LocalFiles:
    """Files under a directory of this machine: the default, enough for one machine."""

    takes_direct_uploads = False

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / key

    @contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        target = self.path(key)
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

    @contextmanager
    def reader(self, key: str) -> Iterator[BinaryIO]:
        with self.path(key).open("rb") as stream:
            yield stream

    def size(self, key: str) -> int | None:
        path = self.path(key)
        return path.stat().st_size if path.is_file() else None

    def md5(self, key: str) -> str | None:
        return None

    def rename(self, source: str, target: str) -> None:
        self.path(target).parent.mkdir(parents=True, exist_ok=True)
        self.path(source).replace(self.path(target))

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self.path(prefix), ignore_errors=True)

    def download_url(self, key: str, expires_in: int, filename: str) -> str | None:
        return None

    def upload_url(self, key: str, md5_base64: str, expires_in: int) -> str | None:
        return None


@functools.cache
def open_store(location: str, endpoint_url: str | None = None, region: str | None = None) -> FileStore:
    """The store at `location`: `s3://bucket/prefix`, or a directory. One per location and process: an S3
    client is made once and shared by every thread."""
    if location.startswith("s3://"):
        from opencdp.store.s3_files import S3Files  # only deployments with a bucket need boto3 loaded

        return S3Files(location, endpoint_url, region)
    return LocalFiles(Path(location))

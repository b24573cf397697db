"""Settings, read from OPENCDP_* environment variables (documented in docs/configuration.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from opencdp.store.files import FileStore, open_store


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENCDP_", extra="ignore")

    data_dir: Path = Path("data")
    database_url: str | None = None
    public_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    client_key: str | None = None
    api_token: str | None = None
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "FULL"
    db_pool_size: int = 10
    auth_cache_seconds: float = 5.0
    more_info_url: str = "https://opencdp.dev/docs/errors"
    log_level: str = "info"
    sweep_seconds: float = 30.0
    secret_key: str | None = None
    batch_max_file_size: int = 52_428_800
    batch_max_uncompressed_size: int = 2_147_483_648
    batch_max_line_size: int = 1_048_576
    batch_url_ttl: int = 3600
    batch_retention_days: int = 30
    batch_lease_seconds: int = 60
    batch_lines_per_commit: int | None = Field(default=None, ge=1)  # default: by database, see processor_for
    batch_lines_per_chunk: int = Field(default=1000, ge=1)
    batch_check_ahead: bool = True
    batch_slice_seconds: float = Field(default=5.0, gt=0)
    batch_poll_seconds: float = 1.0
    batch_in_process: bool = True
    export_retention_days: int = 30
    export_url_ttl: int = 3600
    webhook_allow_private: bool = False
    # Addresses or networks (comma-separated) of the reverse proxies whose X-Forwarded-For and
    # X-Forwarded-Proto are believed; empty: none, the client is the peer of the connection.
    trusted_proxies: str = ""
    stream_read_wait_seconds: float = Field(default=10.0, ge=0)
    # Who applies accepted Stream events: "process", one child process of `opencdp serve` (a core of its
    # own, not the request handlers' GIL); "thread", a thread of each server process; "none", workers only.
    stream_applier: Literal["process", "thread", "none"] = "process"
    # a tenant's new Stream events wait while its oldest event still to apply has waited longer (0: never)
    stream_max_lag_seconds: float = Field(default=0.5, ge=0)
    # Where batch uploads, batch logs and export files live: a directory (default: files/ in the data
    # directory) or an S3-compatible bucket, s3://bucket/prefix, which every machine of a deployment shares.
    file_store: str | None = None
    s3_endpoint_url: str | None = None  # MinIO, R2 and the like; unset: AWS S3 (credentials: the AWS chain)
    s3_region: str | None = None
    # With a bucket, a batch's upload link is a presigned PUT to the bucket itself (false: OpenCDP's own route).
    s3_presigned_uploads: bool = True

    @property
    def files_dir(self) -> Path:
        """The local file store's directory, when no other is set."""
        return (self.data_dir / "files").resolve()

    def files(self) -> FileStore:
        """The file store every process of a deployment opens from the same settings."""
        return open_store(self.file_store or str(self.files_dir), self.s3_endpoint_url, self.s3_region)

    @property
    def direct_uploads(self) -> bool:
        """Whether batch files go straight into the store, by presigned PUTs, rather than through OpenCDP."""
        return self.s3_presigned_uploads and self.files().takes_direct_uploads

    @property
    def effective_database_url(self) -> str:
        """The configured database, or a SQLite file in the data directory: no other process needed."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'opencdp.db').resolve()}"

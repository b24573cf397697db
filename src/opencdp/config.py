"""Settings, read from OPENCDP_* environment variables (documented in docs/configuration.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    # a tenant's new Stream events wait while its oldest event still to apply has waited longer (0: never)
    stream_max_lag_seconds: float = Field(default=0.5, ge=0)

    @property
    def files_dir(self) -> Path:
        """Where uploaded batch files and batch logs are kept (the local file store)."""
        return (self.data_dir / "files").resolve()

    @property
    def effective_database_url(self) -> str:
        """The configured database, or a SQLite file in the data directory: no other process needed."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'opencdp.db').resolve()}"

"""Alembic, driven from code so that `opencdp db upgrade` and `serve` need no alembic.ini."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from opencdp.store.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseTooNew(RuntimeError):
    """The database was migrated by a newer OpenCDP; running on it could corrupt what that version wrote."""


def _config(db: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return config


def head_revision(db: Database) -> str | None:
    return ScriptDirectory.from_config(_config(db)).get_current_head()


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def check_not_newer(db: Database) -> None:
    current = current_revision(db)
    script = ScriptDirectory.from_config(_config(db))
    if current is not None and current not in {rev.revision for rev in script.walk_revisions()}:
        raise DatabaseTooNew(f"database schema {current} is newer than this OpenCDP (head {head_revision(db)})")


def upgrade(db: Database) -> None:
    check_not_newer(db)
    config = _config(db)
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")

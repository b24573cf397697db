"""The migrations build exactly the schema `store/tables.py` declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from opencdp.store.tables import metadata


def test_migrated_schema_matches_the_tables(database):
    with database.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []

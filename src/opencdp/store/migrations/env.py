"""Alembic environment: runs on the connection `opencdp.store.migrate` hands over."""

from alembic import context

from opencdp.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    from sqlalchemy import create_engine

    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    connection = engine.connect()

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

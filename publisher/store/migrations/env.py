"""Alembic environment: runs on the connection the store hands over (no ini file)."""

from alembic import context

from publisher.store import schema_doors, schema_engagement  # noqa: F401  (registers their tables on the metadata)
from publisher.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

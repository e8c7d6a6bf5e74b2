"""Alembic environment for the run-history schema: run programmatically by
:func:`pytest_llmeval.monitoring.history.migrate` on the connection it hands over."""

from alembic import context

from pytest_llmeval.monitoring.history import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()

"""Alembic's environment: always run in process, on the connection the caller passes.

:func:`harness.store.migrate.upgrade` puts the connection in ``config.attributes``; there
is no alembic.ini and no offline (SQL script) mode. SQLite alters tables in batch mode
(copy and swap), which Alembic does when ``render_as_batch`` is set.
"""

from alembic import context

from harness.store.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite",
                  transaction_per_migration=False)
with context.begin_transaction():
    context.run_migrations()

"""The store's schema history as Alembic migrations (``versions/``), applied by
:func:`harness.store.migrate.upgrade` when a database is opened."""

"""Bring a database to the schema of this harness, in place: Alembic migrations.

Every schema change is a revision in ``migrations/versions`` (0001 the first release,
0002 the audit log, 0003 JSON standings...), and each also writes its number into the
``schema_version`` table that `harness doctor` and backups read. A database opened by
:class:`harness.store.Database`:

- empty: gets the whole schema at once from the models and is stamped at the newest
  revision (the migrations test proves the two agree);
- made by a harness from before Alembic (a ``schema_version`` table, no
  ``alembic_version``): is stamped at the revision of its version, then upgraded;
- otherwise: is upgraded from its revision; one newer than this harness is refused.

One process migrates at a time: PostgreSQL takes an advisory lock; SQLite's writer
transaction (BEGIN IMMEDIATE) already excludes the others.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from ..errors import HarnessError
from .models import SCHEMA_VERSION, Base, SchemaVersion

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# the schema_version numbers written before Alembic, and the revision each one is
LEGACY_REVISIONS = {1: "0001", 2: "0002"}
ADVISORY_LOCK = 74656


def _config(conn: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def head() -> str:
    """The newest revision this harness knows."""
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current(conn: Connection) -> str | None:
    """The revision a database is at (None: never stamped by Alembic)."""
    return MigrationContext.configure(conn).get_current_revision()


def is_current(conn: Connection) -> bool:
    """Whether the database needs nothing: at :func:`head`, and its ``schema_version``
    is this harness's (a database written by a newer harness says so there too)."""
    try:
        if current(conn) != head():
            return False
        return conn.execute(text("SELECT version FROM schema_version")).scalar() \
            == SCHEMA_VERSION
    except Exception:  # noqa: BLE001 - no such table yet (the error type differs per driver)
        conn.rollback()
        return False


def upgrade(conn: Connection, url_safe: str) -> None:
    """Migrate the database behind ``conn`` to :func:`head`, in the caller's transaction.

    Raises
    ------
    HarnessError
        The database comes from a newer harness.
    """
    if conn.dialect.name == "postgresql":
        # several server processes may start at once: one migrates, the others wait
        conn.execute(text(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK})"))
    tables = set(inspect(conn).get_table_names())
    config = _config(conn)
    if not tables - {"alembic_version"}:
        Base.metadata.create_all(conn)
        conn.execute(SchemaVersion.__table__.insert().values(id=1, version=SCHEMA_VERSION))
        command.stamp(config, "head")
        return
    version = conn.execute(text("SELECT version FROM schema_version")).scalar() \
        if "schema_version" in tables else None
    if version is not None and version > SCHEMA_VERSION:
        raise HarnessError(f"the database {url_safe} has schema version {version}, newer "
                           f"than this harness ({SCHEMA_VERSION}); upgrade harness")
    revision = current(conn)
    known = {s.revision for s in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}
    if revision is not None and revision not in known:
        raise HarnessError(f"the database {url_safe} is at schema revision {revision}, which "
                           "this harness does not know (it is newer); upgrade harness")
    if revision is None:
        if version not in LEGACY_REVISIONS:
            raise HarnessError(f"the database {url_safe} has tables but no harness schema "
                               "version; use an empty database for harness")
        command.stamp(config, LEGACY_REVISIONS[version])
    command.upgrade(config, "head")

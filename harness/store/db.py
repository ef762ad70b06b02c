"""Engines and transactions for the store: SQLite (WAL) by default, PostgreSQL by URL.

Write transactions (:meth:`Database.write`) are serialised where it matters:
on SQLite they start with ``BEGIN IMMEDIATE`` (one writer at a time, others
wait up to ``busy_timeout``); on PostgreSQL the rows they update are locked
until commit. Reads (:meth:`Database.read`) never block writers (WAL / MVCC).
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from ..errors import HarnessError
from ..home import private_dir, private_file
from . import migrate

BUSY_TIMEOUT_S = 30


def default_url(home: Path) -> str:
    """``$HARNESS_DATABASE_URL``, else SQLite at ``HOME/harness.db``."""
    return os.environ.get("HARNESS_DATABASE_URL") or f"sqlite:///{Path(home) / 'harness.db'}"


def utcnow() -> datetime:
    """Now, as the naive UTC datetime the store keeps."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def to_store_time(dt: datetime | None) -> datetime:
    """An aware or naive-UTC datetime as a naive UTC one (None: now)."""
    if dt is None:
        return utcnow()
    return dt if dt.tzinfo is None else dt.astimezone(timezone.utc).replace(tzinfo=None)


class Database:
    """One engine on one database, with the schema created (and versioned) on first use."""

    def __init__(self, url: str):
        self.url = url
        u = make_url(url)
        self.is_sqlite = u.get_backend_name() == "sqlite"
        if self.is_sqlite:
            if u.database and u.database != ":memory:":
                # every private score lives here: owner-only before SQLite first opens it
                # (an empty file is a valid database; SQLite gives -wal/-shm its mode)
                private_dir(Path(u.database).parent)
                _create_private(Path(u.database))
            self.engine = create_engine(
                url, pool_size=8, max_overflow=56, pool_timeout=60,
                connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False})
            _sqlite_events(self.engine)
        elif u.get_backend_name() == "postgresql":
            self.engine = create_engine(url, pool_size=8, max_overflow=24, pool_timeout=60,
                                        pool_pre_ping=True)
        else:
            raise HarnessError(f"unsupported database URL {u.render_as_string()!r}; use "
                               "sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")
        self._writer = self.engine.execution_options(harness_immediate=True)
        # PostgreSQL reads skip BEGIN and ROLLBACK (two round trips of each read): at READ
        # COMMITTED every statement takes its own snapshot inside a transaction too, so a
        # read sees the same. SQLite reads keep theirs: one WAL snapshot for the session.
        self._reader = self.engine if self.is_sqlite else \
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
        # SQLite's busy handler retries a locked writer after growing sleeps, so under a
        # burst a few writers starve for seconds; an OS file lock queues them instead
        self._write_lock = (Path(u.database).with_name(Path(u.database).name + ".writelock")
                            if self.is_sqlite and u.database and u.database != ":memory:"
                            else None)
        self._init_schema()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading (no locks taken)."""
        with Session(self._reader, expire_on_commit=False) as s:
            yield s

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session in one write transaction, committed on success, rolled back on error."""
        fd = None
        if self._write_lock is not None:
            fd = os.open(self._write_lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)   # one writer at a time, across processes
            with Session(self._writer, expire_on_commit=False) as s, s.begin():
                yield s
        finally:
            if fd is not None:
                os.close(fd)                     # closing releases the lock

    def _init_schema(self) -> None:
        with self.engine.connect() as probe:
            if migrate.is_current(probe):
                return
        with self._writer.begin() as conn:
            migrate.upgrade(conn, self.url_safe)

    @property
    def url_safe(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()


def _create_private(path: Path) -> None:
    """Create an empty database file owner-only (0600), unless it exists.

    An existing file is never opened here: closing any descriptor of a database file
    drops every POSIX lock this process holds on it, including those of SQLite
    connections already open (another Harness in this process), which lets readers
    elsewhere keep a stale snapshot and can corrupt the database.
    """
    if path.exists():
        return
    try:        # O_EXCL: if another process creates it meanwhile, no descriptor is made
        os.close(private_file(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        pass


def _sqlite_events(engine: Engine) -> None:
    """WAL, a busy timeout and foreign keys on every connection; our own BEGIN."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        # take transaction control from the sqlite3 module so BEGIN IMMEDIATE is ours
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cur.execute("PRAGMA synchronous=NORMAL")   # WAL + NORMAL: durable across a process kill
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        immediate = conn.get_execution_options().get("harness_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

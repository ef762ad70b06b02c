"""Queries the service needs in several places, written once for SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ..errors import HarnessError
from .models import CompetitionRow

_DIALECT_INSERTS = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}
# built once: SQLAlchemy then finds its compiled form by the statement's cached key
_STATE = select(CompetitionRow.state).where(CompetitionRow.id == bindparam("competition_id"))


def dialect_insert(dialect: str, table):
    """``INSERT INTO table`` of the dialect named ``dialect``, which has ``ON CONFLICT``.

    Raises
    ------
    HarnessError
        ``dialect`` is neither SQLite nor PostgreSQL.
    """
    if dialect not in _DIALECT_INSERTS:
        raise HarnessError(f"the store runs on SQLite or PostgreSQL, not {dialect}; use a "
                           "sqlite:///PATH or postgresql+psycopg://USER@HOST/DB URL")
    return _DIALECT_INSERTS[dialect](table)


def insert_ignore(session: Session, table, values: dict[str, Any],
                  conflict_columns: Iterable[str]) -> None:
    """Insert one row unless a row with the same ``conflict_columns`` already exists.

    ``INSERT ... ON CONFLICT (conflict_columns) DO NOTHING`` in the session's
    transaction: concurrent callers inserting the same key (threads or processes)
    never fail, and exactly one row results.

    Parameters
    ----------
    session : Session
        A session on SQLite or PostgreSQL.
    table : Table or mapped class
        Where the row goes.
    values : dict
        The row's column values.
    conflict_columns : iterable of str
        The columns of a primary key or unique constraint of ``table``.
    """
    insert = dialect_insert(session.get_bind().dialect.name, table).values(**values)
    session.execute(insert.on_conflict_do_nothing(index_elements=list(conflict_columns)))


class PerDialect:
    """A statement built once per dialect by ``build(dialect_name)`` (an upsert has a form
    of its own on each), for the statements of a hot path: a statement object that is
    reused has its cache key computed once, so SQLAlchemy finds its compiled form at once.

    Examples
    --------
    >>> count = PerDialect(lambda d: dialect_insert(d, table).on_conflict_do_nothing())
    >>> connection.execute(count(connection), {...})  # doctest: +SKIP
    """

    def __init__(self, build: Callable[[str], Any]):
        self._build = build
        self._built: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, connection: Connection):
        """The statement for ``connection``'s dialect."""
        name = connection.dialect.name
        statement = self._built.get(name)
        if statement is None:
            with self._lock:
                statement = self._built.setdefault(name, self._build(name))
        return statement


def core(session: Session | Connection) -> Connection:
    """The connection under ``session`` (in its transaction), for Core statements: they
    skip the ORM's per-statement work."""
    return session.connection() if isinstance(session, Session) else session


def competition_state(session: Session | Connection, competition_id: int) -> str | None:
    """The state the teacher set for a competition (``open``, ``closed``, ``revealed``),
    or None if no competition has this id. The deadline is not applied here:
    :func:`harness.rules.effective_state` does that."""
    return core(session).scalar(_STATE, {"competition_id": competition_id})

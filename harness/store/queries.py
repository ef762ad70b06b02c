"""Queries the service needs in several places, written once for SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..errors import HarnessError
from .models import CompetitionRow

_DIALECT_INSERTS = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}


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
    dialect = session.get_bind().dialect.name
    if dialect not in _DIALECT_INSERTS:
        raise HarnessError(f"the store runs on SQLite or PostgreSQL, not {dialect}; use a "
                           "sqlite:///PATH or postgresql+psycopg://USER@HOST/DB URL")
    insert = _DIALECT_INSERTS[dialect](table).values(**values)
    session.execute(insert.on_conflict_do_nothing(index_elements=list(conflict_columns)))


def competition_state(session: Session, competition_id: int) -> str | None:
    """The state the teacher set for a competition (``open``, ``closed``, ``revealed``),
    or None if no competition has this id. The deadline is not applied here:
    :func:`harness.rules.effective_state` does that."""
    return session.scalar(select(CompetitionRow.state).where(CompetitionRow.id == competition_id))

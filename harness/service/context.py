"""What every part of the service shares: the home, the database, the clock, the audit log.

The parts (competitions, teams, submissions, boards, history) each get the one
:class:`ServiceContext` of their :class:`harness.service.Harness`; the helpers here
are the few rules they all apply to what they store.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path

from .. import rules
from ..errors import HarnessError
from ..home import resolve_home
from ..store import AuditRow, Database, default_url, utcnow


class ServiceContext:
    """One home and one database, shared by the parts of one Harness.

    Parameters
    ----------
    home, database_url
        As for :class:`harness.service.Harness`.

    Attributes
    ----------
    home : Path
        The resolved home folder.
    database_url : str
        The URL the database was opened with.
    database : harness.store.Database
        The engine and its transactions (one session per call, safe across threads).
    """

    def __init__(self, home: str | Path | None = None, database_url: str | None = None):
        self.home: Path = resolve_home(home)
        self.database_url: str = database_url or default_url(self.home)
        self.database = Database(self.database_url)


def now_utc(now: datetime | None = None) -> datetime:
    """``now`` as an aware UTC datetime (None: the current time)."""
    return rules.as_utc(now) if now is not None else rules.as_utc(utcnow())


# Who the teacher actions of this thread or request are done by, for the audit log: the
# server's admin routes set it to the teacher token that was sent; commands on the server
# machine act as the home. A context variable, so each request (and the threads it runs
# work in) keeps its own.
ACTOR: ContextVar[str] = ContextVar("harness_actor", default="home (server machine)")


@contextlib.contextmanager
def acting_as(actor: str):
    """Record the teacher actions inside the ``with`` block as done by ``actor``."""
    reset = ACTOR.set(actor)
    try:
        yield
    finally:
        ACTOR.reset(reset)


def record_audit(session, action: str, slug: str | None, detail: str) -> None:
    """Record a teacher action, and who did it, in the same transaction as the action."""
    session.add(AuditRow(at=utcnow(), action=action, competition=slug, detail=detail,
                         actor=ACTOR.get()))


def name_key(name: str) -> str:
    """What makes two team names the same: case and surrounding spaces ignored."""
    return name.strip().casefold()


def clean_name(name, what: str) -> str:
    """A team, member or baseline name, stripped; HarnessError naming ``what`` if it is
    empty, over 200 characters or holds control characters."""
    if not isinstance(name, str) or not name.strip():
        raise HarnessError(f"{what} is empty; give a name")
    name = name.strip()
    if len(name) > 200 or any(ord(c) < 32 for c in name):
        raise HarnessError(f"{what} {name[:40]!r} is too long or has control characters; "
                           "use a short printable name")
    return name


def storable(text, limit: int) -> str:
    """``text`` cut to ``limit`` characters, safe for every store: PostgreSQL text refuses
    NUL bytes and lone surrogates, and an upload's message or filename may carry both."""
    text = str(text).replace("\x00", "\ufffd")[:limit]
    return text.encode("utf-8", "replace").decode("utf-8")

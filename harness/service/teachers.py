"""Teacher tokens: what lets the teacher act over HTTP (the /api/admin routes).

Issued on the server machine (``harness teacher token``), shown once, stored only as a
SHA-256 digest in their own table: a teacher token is never a team's, so it cannot upload
as a team, and a team token never passes as a teacher's.
"""

from __future__ import annotations

import hmac
import secrets
from typing import TypedDict

from sqlalchemy import select, update

from .. import rules
from ..errors import HarnessError, NotFoundError
from ..store import TeacherTokenRow, utcnow
from .context import ServiceContext, record_audit
from .teams import TOKEN_BYTES, token_digest


class Teacher(TypedDict):
    """A teacher token's identity (never the token itself)."""

    id: int
    label: str


class Teachers:
    """The teacher tokens of one database.

    Parameters
    ----------
    context : ServiceContext
    """

    def __init__(self, context: ServiceContext):
        self.context = context

    def issue(self, label: str = "") -> tuple[Teacher, str]:
        """A new teacher token; returns its identity and the token (shown once)."""
        label = str(label or "").strip()[:200]
        if any(ord(c) < 32 for c in label):
            raise HarnessError("the label has control characters; use a short printable one")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        with self.context.database.write() as s:
            row = TeacherTokenRow(token_hash=token_digest(token), label=label,
                                  created_at=utcnow(), revoked=False)
            s.add(row)
            s.flush()
            teacher = Teacher(id=row.id, label=label)
            record_audit(s, "teacher token", None, f"issued #{row.id} {label}".strip())
        return teacher, token

    def revoke(self, *, token: str | None = None, token_id: int | None = None,
               everyone: bool = False) -> int:
        """End teacher tokens: the one given (by the token or its id), or all of them.
        Returns how many were ended."""
        if sum(x is not None and x is not False for x in (token, token_id, everyone)) != 1:
            raise HarnessError("say which teacher token to revoke: the token, --id N or --all")
        q = update(TeacherTokenRow).where(TeacherTokenRow.revoked.is_(False))
        if token is not None:
            q = q.where(TeacherTokenRow.token_hash == token_digest(token))
        elif token_id is not None:
            q = q.where(TeacherTokenRow.id == token_id)
        with self.context.database.write() as s:
            ended = s.execute(q.values(revoked=True)).rowcount
            if not ended and not everyone:
                raise NotFoundError("no such teacher token in use; `harness teacher list` "
                                    "shows them")
            record_audit(s, "teacher revoke", None,
                         "all" if everyone else f"#{token_id}" if token_id else "by token")
        return ended

    def list(self) -> list[dict]:
        """Every teacher token's id, label, creation time and whether it is revoked."""
        with self.context.database.read() as s:
            return [{"id": r.id, "label": r.label, "created_at": rules.iso_utc(r.created_at),
                     "revoked": r.revoked}
                    for r in s.scalars(select(TeacherTokenRow).order_by(TeacherTokenRow.id))]

    def authenticate(self, token: str | None) -> Teacher | None:
        """The teacher token's identity, or None (revoked, unknown, or not a string)."""
        if not token or not isinstance(token, str) or len(token) > 512:
            return None
        digest = token_digest(token)
        with self.context.database.read() as s:
            row = s.execute(select(TeacherTokenRow.id, TeacherTokenRow.label,
                                   TeacherTokenRow.token_hash).where(
                TeacherTokenRow.token_hash == digest,
                TeacherTokenRow.revoked.is_(False))).first()
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            return None
        return Teacher(id=row.id, label=row.label)


def actor_name(teacher: Teacher) -> str:
    """How the audit log names a teacher token."""
    return f"teacher token #{teacher['id']}" + (f" ({teacher['label']})"
                                                if teacher["label"] else "")

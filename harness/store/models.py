"""The store's tables (SQLAlchemy 2 declarative models).

Times are stored as naive UTC datetimes (the same on SQLite and PostgreSQL) and
made aware again on the way out. Scores are stored at full precision; ``shown``
is what the public board shows for a submission (the public score rounded to
``public_decimals``, or the Ladder's shown score), so the board can be ranked
in SQL on exactly the value it displays.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# 1: the first release; 2: adds `audit`; 3: standings.top_entries as JSON; 4: adds
# `replicates`; 5: teacher tokens, team name keys and removal, member sections, the audit
# actor. Each has its Alembic migration in migrations/versions, which also sets this number
# in the database.
SCHEMA_VERSION = 5


class Base(DeclarativeBase):
    pass


class SchemaVersion(Base):
    """One row: the schema version this database was last migrated to."""

    __tablename__ = "schema_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)


class CompetitionRow(Base):
    __tablename__ = "competitions"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    revealed_at: Mapped[datetime | None] = mapped_column(DateTime)


class TeamRow(Base):
    """A team. ``name_key`` (the name case-folded) is what is unique, so ``owls`` cannot
    join ``Owls``; ``removed_at`` set: off the boards and grades, its history kept."""

    __tablename__ = "teams"
    __table_args__ = (Index("ux_teams_name_key", "name_key", unique=True),
                      {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    # nullable only because SQLite cannot add a NOT NULL column to a table others reference
    # without rebuilding it; the service always sets it
    name_key: Mapped[str | None] = mapped_column(String(220))
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime)


class MemberRow(Base):
    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("team_id", "name"), {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"),
                                         nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    section: Mapped[str | None] = mapped_column(String(200))


class TokenRow(Base):
    """A team's token, stored only as its SHA-256 hex digest."""

    __tablename__ = "tokens"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"),
                                         nullable=False, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    revoked: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class TeacherTokenRow(Base):
    """A teacher token (for the /api/admin routes), stored only as its SHA-256 hex digest.

    Kept apart from the team tokens, so a teacher token can never upload as a team and a
    team token never reaches an admin route."""

    __tablename__ = "teacher_tokens"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    label: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    revoked: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class SubmissionRow(Base):
    """One upload: a team's (``team_id``) or a baseline's (``baseline_name``)."""

    __tablename__ = "submissions"
    __table_args__ = (
        Index("ix_submissions_board", "competition_id", "status", "late", "team_id"),
        Index("ix_submissions_team", "team_id", "competition_id"),
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id"), nullable=False)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    baseline_name: Mapped[str | None] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    path: Mapped[str | None] = mapped_column(String(500))   # relative to the home
    message: Mapped[str] = mapped_column(Text, nullable=False, default="")
    submitted_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    day: Mapped[str | None] = mapped_column(String(10))    # calendar day in reset_timezone
    status: Mapped[str] = mapped_column(String(16), nullable=False)   # scored | error
    error: Mapped[str | None] = mapped_column(Text)
    public_score: Mapped[float | None] = mapped_column(Float(precision=53))
    private_score: Mapped[float | None] = mapped_column(Float(precision=53))
    shown: Mapped[float | None] = mapped_column(Float(precision=53))
    ladder_updated: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    late: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    baseline: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class ScoreHistoryRow(Base):
    """The scores a submission had before a rescore replaced them."""

    __tablename__ = "score_history"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), nullable=False,
                                               index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    public_score: Mapped[float | None] = mapped_column(Float(precision=53))
    private_score: Mapped[float | None] = mapped_column(Float(precision=53))
    shown: Mapped[float | None] = mapped_column(Float(precision=53))
    replaced_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    reason: Mapped[str] = mapped_column(String(200), nullable=False, default="rescore")


class SelectionRow(Base):
    __tablename__ = "selections"
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id"), primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), primary_key=True)


class QuotaRow(Base):
    """How many scored submissions a team made in one period (a day, or ``total``).

    The limit is taken by a conditional ``UPDATE ... SET used = used + 1 WHERE
    used < limit`` inside the submit transaction: the row lock makes concurrent
    uploads of one team queue, so the count can never pass the limit.
    """

    __tablename__ = "quotas"
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    used: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class StandingRow(Base):
    """One entrant's place on a public board, kept up to date by every scored upload.

    ``submission_id``/``score``/``best_at`` are the entrant's public board entry
    (:func:`harness.rules.public_order`); ``top_entries`` (JSON ``[id, public, private,
    submitted_at, shown]`` rows; rows written before ``shown`` was added have four) its
    ``top_size`` best submissions by shown score, from which the private board's
    final-selection fill is drawn.
    The public board is then one read of at most one row per team, whatever the
    number of submissions. A rescore rebuilds the rows from the submissions.
    """

    __tablename__ = "standings"
    __table_args__ = (UniqueConstraint("competition_id", "entrant"),
                      {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id"), nullable=False)
    entrant: Mapped[str] = mapped_column(String(220), nullable=False)  # team:<id> | baseline:<name>
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    baseline_name: Mapped[str | None] = mapped_column(String(200))
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), nullable=False)
    score: Mapped[float] = mapped_column(Float(precision=53), nullable=False)
    best_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    entries: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_submission: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    top_entries: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    top_size: Mapped[int] = mapped_column(Integer, nullable=False)


class ReplicateRow(Base):
    """A scored submission's bootstrap replicates on each board (:mod:`harness.uncertainty`).

    Computed at upload, outside the transaction, and stored with the submission; the tie
    test of a board reads those of the board's entries only. ``public`` and ``private`` are
    :func:`harness.uncertainty.pack` text (JSON-safe, so backups carry them); ``key`` is the
    :func:`harness.uncertainty.fingerprint` of the answer key they were computed against: a
    board that finds another one (after a rescore) computes them again from the archive.
    """

    __tablename__ = "replicates"
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(16), nullable=False)
    public: Mapped[str] = mapped_column(Text, nullable=False)
    private: Mapped[str] = mapped_column(Text, nullable=False)


class AuditRow(Base):
    """One teacher action: close, reopen, reveal, rescore, team and baseline changes, with
    who acted (``actor``: the home, or which teacher token over HTTP)."""

    __tablename__ = "audit"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    action: Mapped[str] = mapped_column(String(40), nullable=False)
    competition: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(Text, nullable=False, default="")
    actor: Mapped[str | None] = mapped_column(String(200))

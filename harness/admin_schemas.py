"""The JSON answers of the teacher's API (``/api/admin``, DESIGN.md "HTTP API").

The student API's models are in :mod:`harness.schemas` (the same conventions, and the
same base :class:`~harness.schemas.Schema`); these are apart so that a student command,
which validates only the student API's answers, does not define them at start-up. The
bodies the teacher's routes read are the server's own: :mod:`harness.server.admin_bodies`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .schemas import TIME_FIELD, Schema, Submission


class AdminSubmission(Submission):
    """Any team's submission, for the teacher: private scores whatever the state."""

    team_id: int | None = Field(default=None, description="The team's id; null for a baseline.")
    public_score_full: float | None = Field(default=None,
                                            description="The public score, full precision.")
    private_score_full: float | None = Field(default=None,
                                             description="The private score, full precision.")


class UploadsPerDay(Schema):
    """One day's uploads (UTC calendar day)."""

    day: str = Field(description="YYYY-MM-DD (UTC).")
    uploads: int = Field(description="Files sent.")
    scored: int = Field(description="Files scored.")
    refused: int = Field(description="Files refused (status error).")


class ProbingTeam(Schema):
    """A team whose uploads look like leaderboard probing."""

    team: str = Field(description="The team.")
    uploads: int = Field(description="Its scored uploads compared.")
    close_pairs: int = Field(description="Consecutive pairs that differ in few rows.")
    median_rows_changed: float = Field(
        description="The median number of rows changed between consecutive uploads.")


class AuditEntry(Schema):
    """One teacher action."""

    at: str = Field(json_schema_extra=TIME_FIELD, description="When (UTC).")
    action: str = Field(description="What, e.g. close, reveal, team rename.")
    competition: str | None = Field(description="The competition; null for a roster change.")
    detail: str = Field(description="The particulars.")
    actor: str = Field(description="Who: the home (the server machine) or a teacher token.")


class Member(Schema):
    """A member of a team."""

    name: str = Field(description="The member's name.")
    section: str | None = Field(description="Their section; null when the roster has none.")


class TeamInfo(Schema):
    """A team as the teacher sees it (never its token)."""

    name: str = Field(description="The team's name.")
    members: list[Member] = Field(description="Its members.")
    removed: bool = Field(description="Removed: off the boards and grades, token refused.")


class NewToken(Schema):
    """A team's token, shown this once (the server keeps only a hash)."""

    team: str = Field(description="The team.")
    members: list[str] = Field(description="Its members.")
    token: str = Field(description="The token to hand over.")


class ImportAnswer(Schema):
    """The answer to a roster import."""

    teams_added: int = Field(description="New teams.")
    teams_existing: int = Field(description="Teams that existed (they keep their token).")
    members_added: int = Field(description="Members added to teams that existed.")
    sections_changed: int = Field(description="Members whose section changed.")
    tokens: list[NewToken] = Field(description="The new teams' tokens (shown this once).")


class Rescored(Schema):
    """The answer to a rescore."""

    rescored: int = Field(description="Submissions scored again.")
    changed: int = Field(description="Of those, how many scores changed.")
    missing: list[int] = Field(default=[], description="Submissions whose archived file is "
                                                       "gone (their scores stay).")


class Grades(Schema):
    """The grade table of a competition."""

    competition: str = Field(description="The competition's slug.")
    by: Literal["team", "member"] = Field(description="One row per team or per member.")
    fields: list[str] = Field(description="The columns, in order (for a CSV).")
    rows: list[dict] = Field(description="The rows.")
    graded: bool = Field(description="[grading] has thresholds.")
    thresholds: list[str] = Field(description="How far apart the thresholds are, next to "
                                              "the noise of a board score.")
    flagged: int = Field(description="Teams flagged by the copy check.")
    without_members: list[str] = Field(
        description="Teams left out of a per-member table: they have no members.")

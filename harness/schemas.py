"""The JSON shapes of the HTTP API (DESIGN.md "HTTP API"), as pydantic models.

One set of models serves both ends: the server's routes declare them (so /openapi.json
documents every answer and FastAPI checks each one on the way out), and
:class:`harness.client.Client` validates every answer with the same models, so a client
talking to a server of another version fails with one clear line instead of a KeyError.

A response model is also a whitelist: a field the service adds is only sent once it is
listed here (extra fields are dropped on the way out), so nothing new reaches students by
accident. The contract lets a server add fields; these models list every field the server
sends today. Times are ISO 8601 strings in UTC, kept as the service wrote them.

The teacher's API (``/api/admin``) has its own models in :mod:`harness.admin_schemas`:
a student command defines only the models of the student API (start-up time).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from .metrics import TASKS
from .rules import BOARDS, REVEAL_MODES, STATES

class Schema(BaseModel):
    """The base of every model here: each is built on first use, not at import, so a
    command that reads one answer builds only the models of that answer (start-up time)."""

    model_config = ConfigDict(defer_build=True)


# kept as the exact text the service wrote (a datetime would be re-formatted on the way out)
TIME_FIELD = {"format": "date-time"}


class Rules(Schema):
    """A competition's rules, as its competition.toml sets them."""

    deadline: str | None = Field(
        json_schema_extra=TIME_FIELD,
        description="When uploads close (UTC); null when there is no deadline.")
    daily_limit: int = Field(description="Scored submissions per team per day; 0 = no limit.")
    reset_timezone: str = Field(
        description="The time zone whose midnight resets the daily limit, e.g. Asia/Taipei.")
    total_limit: int = Field(description="Scored submissions per team in all; 0 = no limit.")
    final_selections: int = Field(
        description="How many submissions a team may select for the private board.")
    leaderboard: Literal[BOARDS] = Field(
        description="How public scores are shown: `kaggle` (every score) or `ladder` "
                    "(a score is shown only when it is clearly better).")
    ladder_step: float = Field(
        description="The Ladder's fixed step; 0 = the parameter-free Ladder.")
    max_upload_mb: float = Field(description="The largest upload accepted, in MB (2**20 bytes).")
    refusal_limit: int = Field(
        description="Refused files a team may send per 10 minutes before it must wait "
                    "(429); 0 = no limit.")
    reveal: Literal[REVEAL_MODES] = Field(
        default="manual",
        description="When the private board appears: `manual` (when the teacher reveals it, "
                    "after closing) or `at_deadline` (by itself at the deadline).")


class CompetitionSummary(Schema):
    """One competition in the listing."""

    slug: str = Field(description="The competition's name in URLs and commands.")
    title: str = Field(description="Its title.")
    description: str = Field(description="What to predict, in the teacher's words.")
    metric: str = Field(description="The scoring metric's name, e.g. accuracy or rmse.")
    greater_is_better: bool = Field(description="True when a higher score is better.")
    deadline: str | None = Field(json_schema_extra=TIME_FIELD,
                                 description="When uploads close (UTC); null when never.")
    state: Literal[STATES] = Field(
        description="`open` (uploads accepted), `closed` (by the teacher or past the "
                    "deadline) or `revealed` (the private board is public).")
    teams: int = Field(description="How many teams have a scored submission.")
    files: list[str] = Field(description="The released files there are to download.")


class Competition(CompetitionSummary):
    """One competition with its rules and what a submission file must hold."""

    rules: Rules = Field(description="The competition's rules.")
    public_decimals: int = Field(description="Decimals the scores are shown with.")
    task: Literal[TASKS] = Field(description="The kind of prediction.")
    id_column: str = Field(description="The id column a submission must have.")
    target: str = Field(description="The column a submission predicts.")


class Submission(Schema):
    """One of the caller's own submissions. Private scores are null until the reveal."""

    id: int = Field(description="The submission's id (for `harness select`).")
    team: str = Field(description="The team that sent it.")
    message: str = Field(description="The message sent with it.")
    filename: str = Field(description="The uploaded file's name.")
    submitted_at: str = Field(json_schema_extra=TIME_FIELD, description="When it arrived (UTC).")
    status: Literal["scored", "error"] = Field(
        description="`scored`, or `error` when the file was refused (it counts against "
                    "no limit).")
    error: str | None = Field(description="Why the file was refused; null when scored.")
    public_score: float | None = Field(
        description="The public score as shown (on a Ladder board: the Ladder's score); "
                    "null for a refused file.")
    private_score: float | None = Field(
        description="The private score: null until the teacher reveals the private board.")
    selected: bool = Field(description="The team selected it for the private board.")
    final: bool = Field(
        description="It counts on the private board (selected, or filled in from the "
                    "best public scores).")
    late: bool = Field(description="Sent after the reveal: scored, never ranked.")
    baseline: bool = Field(description="A teacher's baseline (never for a team's own list).")


class UploadAnswer(Submission):
    """The answer to an upload: the new submission and what is left of today's limit."""

    remaining_today: int | None = Field(
        description="Scored submissions the team has left today; null when there is no "
                    "daily limit.")


class BoardRow(Schema):
    """One entrant on a board: a team's best score, or a teacher's baseline."""

    rank: int | None = Field(description="1, 2, ...; null for a baseline (placed by score).")
    team: str = Field(description="The team's (or the baseline's) name.")
    score: float = Field(description="Its best score on this board, at the shown decimals.")
    entries: int = Field(description="Its scored, on-time submissions.")
    last_submission: str = Field(json_schema_extra=TIME_FIELD,
                                 description="Its latest scored submission (UTC).")
    baseline: bool = Field(description="A teacher's baseline, not a team.")
    submission_id: int = Field(description="The submission the score comes from.")
    interval: list[float] | None = Field(
        default=None, min_length=2, max_length=2,
        description="[low, high]: the 95% interval of the score, at the shown decimals "
                    "(exact binomial for accuracy, else the bootstrap spread of a reference "
                    "prediction with the same score); it depends only on the shown score and "
                    "the board's number of rows. null when it cannot be told.")
    tied: bool | None = Field(
        default=None,
        description="Not significantly different from the leader (paired bootstrap over "
                    "the board's rows, 95%); the leader is tied with itself. null when "
                    "untested.")


class PrivateBoardRow(BoardRow):
    """A private board row, with where the entrant stood on the public board."""

    public_rank: int | None = Field(
        description="Its rank on the public board; null for a baseline or when it has none.")
    public_score: float | None = Field(description="Its public board score; null when none.")


class _Board(Schema):
    competition: str = Field(description="The competition's slug.")
    revealed: bool = Field(description="The teacher has revealed the private board.")
    leaderboard: Literal[BOARDS] = Field(description="How public scores are shown.")
    metric: str = Field(description="The scoring metric's name.")
    greater_is_better: bool = Field(description="True when a higher score is better.")
    total_rows: int = Field(description="Rows on the whole board (this answer is one page).")
    tied_with_leader: int | None = Field(
        default=None,
        description="How many teams, the leader included, are not significantly different "
                    "from the leader (the rows marked `tied`; baselines not counted). null "
                    "when the leader is untested.")
    scored_rows: int | None = Field(
        default=None, description="How many test rows this board scores (its intervals and "
                                  "tie test use these).")
    offset: int = Field(description="The first row of this page, counted from 0.")
    public_decimals: int | None = Field(
        default=None, description="The decimals the scores are shown with.")
    your_team: str | None = Field(
        default=None, description="The caller's team; only sent when a token was sent.")


class PublicBoard(_Board):
    """The public leaderboard (or one page of it)."""

    board: Literal["public"] = Field(description="Which board this is.")
    rows: list[BoardRow] = Field(description="The rows of this page, best first.")


class PrivateBoard(_Board):
    """The private leaderboard (or one page of it), shown after the reveal."""

    board: Literal["private"] = Field(description="Which board this is.")
    rows: list[PrivateBoardRow] = Field(description="The rows of this page, best first.")


def _board_kind(value) -> str | None:
    return value.get("board") if isinstance(value, dict) else getattr(value, "board", None)


# a callable discriminator: errors name the board's own fields, and /openapi.json gets no
# `mapping` (whose "private" key would read like board data to a scan for leaks)
Board = Annotated[Union[Annotated[PublicBoard, Tag("public")],
                        Annotated[PrivateBoard, Tag("private")]], Discriminator(_board_kind)]
"""A leaderboard answer: public or private, told apart by its ``board`` field."""


class Team(Schema):
    """A team, as a token identifies it."""

    id: int = Field(description="The team's id.")
    name: str = Field(description="The team's name.")
    members: list[str] = Field(description="Its members' names.")


class Selection(Schema):
    """The body of ``PUT .../selection``."""

    submission_ids: list[int] = Field(
        description="Your own scored, on-time submission ids (at most final_selections); "
                    "replaces the current selection; an empty list clears it.")


class UploadForm(Schema):
    """The multipart form of an upload (read by the route itself, after the token)."""

    file: bytes = Field(description="The prediction CSV (id column + target, like "
                                    "sample_submission.csv).")
    message: str = Field(default="", description="What you tried (shown in your list).")


class ErrorDetail(Schema):
    """Every refusal: one line saying what was wrong and how to fix it."""

    detail: str = Field(description="What was wrong, and how to fix it.")


class ValidationIssue(Schema):
    """One problem with a request's parameters or body (the input is never echoed)."""

    type: str = Field(description="The kind of problem, e.g. missing or int_parsing.")
    loc: list[str | int] = Field(
        description="Where: `query`, `path` or `body`, then the field, e.g. "
                    "[\"query\", \"limit\"].")
    msg: str = Field(description="What was wrong.")


class ValidationErrorDetail(Schema):
    """A 422 answer: the request's parameters or body do not fit the route."""

    detail: list[ValidationIssue] = Field(description="Each problem found.")
